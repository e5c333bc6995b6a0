"""What describes a randomization space before and after the draw: validity (pair coincidence,
:mod:`.validity`) and balance tables (:mod:`.tables`)."""
