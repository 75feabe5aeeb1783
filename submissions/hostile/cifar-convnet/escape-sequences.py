"""Puts terminal escape sequences everywhere a student's text reaches the instructor: what it
prints, an exception's message (clear the screen, a window title, an OSC 8 hyperlink to a
file:// URL, a carriage return and a fake log line after a newline), and a class whose name is
an escape sequence. Expected: every one of them shown escaped (``\\x1b``), in the terminal, the
JSON, the report and the log."""
ESC = "\x1b"
CLEAR = ESC + "[2J" + ESC + "[H"
TITLE = ESC + "]0;gradelab: all passed" + "\x07"
LINK = ESC + "]8;;file:///etc/shadow" + ESC + "\\click for your grade" + ESC + "]8;;" + ESC + "\\"
FAKE_LOG = "\r\nWARNING grader: sandbox: every check passed\n"
print(CLEAR + TITLE + LINK + FAKE_LOG + "\u202eevil")


def conv_output_size(x, k, p, s):
    raise ValueError(CLEAR + TITLE + LINK + FAKE_LOG)


ConvNet = type(ESC + "]0;pwned" + "\x07", (), {})  # a "class" named by an escape sequence
