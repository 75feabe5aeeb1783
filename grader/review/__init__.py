"""Written answers graded by people: where their grades are kept (``store``), how they join the
automatic results at read time (``merge``), how near-identical answers are grouped so that a
group is graded at once (``groups``), and what the class summary says of them (``summary``)."""
