"""Files a trial keeps: atomic writes that never replace a user's file, hashes, JSON records
(:mod:`.files`), and the saved randomization spaces (:mod:`.spacefiles`)."""
