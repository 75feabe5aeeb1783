"""gradelab: automated grading and feedback reports for deep-learning practical work.

Layers, each talking to the next through pydantic models:
``lab`` (manifests) → ``grading`` (engine, results) → ``checks`` (one kind per module)
→ ``sandbox`` (student code in a limited child process) and ``cli`` on top of ``api``.
"""

__version__ = "0.1.0"
