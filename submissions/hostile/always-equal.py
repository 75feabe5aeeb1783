"""Returns objects that claim to equal anything (__eq__, __array__, __float__ overridden).
Expected: the grader converts returned values to plain data before comparing, so the objects'
methods never run in the grader; conv-output-size fails."""


class Anything(int):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __hash__(self):
        return 0

    def __array__(self, *args, **kwargs):
        raise RuntimeError("would run in the grader")


def conv_output_size(x, k, p, s):
    return Anything(-1)
