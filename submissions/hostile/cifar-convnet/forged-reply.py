"""Writes its own reply to the grader on the reply pipe, then exits: an error whose fields hold
escape sequences and line breaks (they used to reach the grader's log raw), and an isolation
report saying nothing is missing with a fake warning in it. Expected: the forged text is shown
escaped, the isolation report it forged is not read (the grader takes it from the child before
any student code runs), and the check fails."""
import json
import os
import struct

ESC = "\x1b"


def conv_output_size(x, k, p, s):
    header = json.dumps({"stage": "probe", "ok": False,
                         "isolation_missing": ["FAKE WARNING\n" + ESC + "[2J"],
                         "error": {"type": "Forged" + ESC + "[31m\nERROR grader: fake", "message": ESC + "]0;title\x07",
                                   "where": "convnet.py\nCRITICAL grader: fake", "out_of_memory": False, "traceback": ""}}).encode()
    frame = b"GLB1" + struct.pack("<I", len(header)) + header + struct.pack("<I", 0)
    os.write(4, struct.pack("!Q", len(frame)) + frame)
    os._exit(0)
