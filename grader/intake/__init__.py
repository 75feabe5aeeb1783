"""Turning what a course receives into submissions: the safe reader first (no links, no special
files, caps); archives, notebooks and LMS layouts build on it. Nothing downstream touches a raw
hand-in path again."""
