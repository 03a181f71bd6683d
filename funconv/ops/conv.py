"""Convolution (issue 5)."""


def conv(x, w, *, stride=1, padding=0, dilation=1, groups=1, algorithm="auto"):
    raise NotImplementedError("fc.conv is being written (issue 5)")


def conv_transpose(y, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    raise NotImplementedError("fc.conv_transpose is being written (issue 5)")
