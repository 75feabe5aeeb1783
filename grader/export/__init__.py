"""Grades back where the course keeps them: one module per target, each a function from results
to the bytes of the files that target imports (``{file name: bytes}``), tested field by field.

What a student reads in an export (feedback comments, Gradescope's output) is decided in one
place, ``feedback.student_feedback``, so that the reveal policy can be applied there.
"""
