"""funconv.backends: compilers and evaluators of funconv graphs.

This folder is installed as the subpackage `funconv.backends` (see
pyproject.toml). Importing it as a top-level `backends` from the repository
root is a mistake that would load a second copy of the code.
"""

if __name__ != "funconv.backends":
    raise ImportError(
        "the 'backends' folder is the package funconv.backends; import it as "
        "`import funconv.backends` (install the project with `pip install -e .`), "
        "not as `backends` from the repository root")
