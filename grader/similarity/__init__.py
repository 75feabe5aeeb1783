"""Similarity across a class: pairs of hand-ins to look at together, each with its evidence.

Every student starts from the same template, so raw overlap is high and means nothing; what
means something is overlap *beyond* the template and beyond what most of the class wrote. Three
signals, one module each, all reading the hand-ins as intake built them (``handins``):

- ``fingerprints``: code, as winnowed fingerprints of Pygments tokens (copydetect), identifiers,
  comments and layout normalised away, the template's fingerprints and the class's common ones
  subtracted;
- ``answers``: the answer sheet's values both hand-ins share, weighted by how rare each is in the
  class, a shared *wrong* value weighted most (two students rarely make the same rare mistake);
- ``written``: phrases of the written answers both share, less the question's own words and the
  phrases common in the class.

``ranking`` joins them into one score per pair and a ranked list with a one-line reason. Nothing
here is shown to students: the results are written under ``OUT/similarity`` and on instructors'
pages only, and the wording informs ("similar: look at these together"), it never accuses.
"""
