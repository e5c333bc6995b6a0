"""Randomization spaces as data: schemes packed as bits (:mod:`.schemes`), a space read back with its
labels (:mod:`.saved`), and the two-group space of one comparison of a multi-arm design (:mod:`.comparisons`)."""
