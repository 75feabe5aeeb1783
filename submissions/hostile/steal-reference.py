"""Looks for the lab's reference implementation and answers, other hand-ins and earlier
results, and returns the reference's answers if it finds them. Expected: it finds nothing (the
labs, the class and the results are hidden from the child), so conv-output-size fails."""
import glob
import importlib.util
import os

FOUND = []
for pattern in ["/work/*/reference/cifar-convnet/reference.py", "/work/*/*/reference/cifar-convnet/reference.py",
                "/root/**/reference/cifar-convnet/reference.py", "/home/*/*/reference/cifar-convnet/reference.py",
                "../../reference/cifar-convnet/reference.py", "/tmp/**/reference/cifar-convnet/reference.py"]:
    try:
        FOUND += glob.glob(pattern, recursive=True)[:1]
    except OSError:
        pass
print("found:", FOUND)
print("answers:", glob.glob("/work/*/reference/*/answers.yaml"), "results:", glob.glob("/work/*/results/**/*.json"))


def conv_output_size(x, k, p, s):
    for path in FOUND:
        spec = importlib.util.spec_from_file_location("stolen", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.conv_output_size(x, k, p, s)
    return 0
