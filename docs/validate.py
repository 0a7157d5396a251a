"""numpydoc validation of every public docstring, as ``make docs`` runs it.

Run ``python docs/validate.py [prefix ...]`` for a quick check without building the site;
it prints each failing object with its codes and exits 1 if any fails. The checks are the
ones ``conf.py`` sets (``numpydoc_validation_checks``).
"""

import inspect
import pathlib
import sys

from numpydoc.validate import validate

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from conf import numpydoc_validation_checks  # noqa: E402

import rconv  # noqa: E402
import rconv.dask  # noqa: E402
import rconv.kernels  # noqa: E402
import rconv.nn  # noqa: E402
import rconv.nn.functional  # noqa: E402
import rconv.optim  # noqa: E402

SKIP = numpydoc_validation_checks - {"all"}


def public_objects():
    """Yield the dotted names the API reference documents."""
    mods = (rconv, rconv.nn, rconv.nn.functional, rconv.optim, rconv.kernels, rconv.dask)
    seen = set()
    for mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue  # an alias (rconv.nn.SGD, rconv.nn.functional.conv2d) is checked once
            seen.add(id(obj))
            yield f"{mod.__name__}.{name}"
            if inspect.isclass(obj):
                # the members the class template documents: its own and the inherited
                # ones, except those of Module and object (:inherited-members: Module, object)
                skip = {"object"} if obj is rconv.nn.Module else {"object", "Module"}
                for attr in dir(obj):
                    owner = next(c for c in obj.__mro__ if attr in vars(c))
                    member = getattr(obj, attr)
                    if attr.startswith("_") or not callable(member) or not member.__doc__:
                        continue
                    if owner is obj or owner.__name__ not in skip:
                        yield f"{mod.__name__}.{name}.{attr}"


def main(prefixes):
    bad = 0
    for name in public_objects():
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        errors = [(c, m) for c, m in validate(name)["errors"] if c not in SKIP]
        if errors:
            bad += 1
            print(name)
            for code, msg in errors:
                print(f"  {code}: {msg}")
    print(f"{bad} docstrings fail")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
