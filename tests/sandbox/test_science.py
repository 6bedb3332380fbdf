"""The python-science image (conformance, every backend): the scientific stack imports and
computes, the default python image stays the standard library, no compiler or package manager
came along with scipy's dependencies, and the run's limits still hold."""

from __future__ import annotations

from crucible_ray.languages import IMAGES
from crucible_ray.models import EvalRequest, EvalStatus

SCIENCE = "python-science"

EVERYTHING = """
import numpy, scipy, pandas, sympy, networkx, matplotlib, sklearn, seaborn, sortedcontainers
import regex
import scipy.optimize, scipy.linalg, scipy.sparse, scipy.stats, scipy.signal, scipy.integrate
import scipy.interpolate, scipy.spatial, scipy.special, scipy.fft
import sklearn.linear_model
import matplotlib.pyplot as plt
x = numpy.linalg.solve([[2.0, 0.0], [0.0, 4.0]], [2.0, 4.0])
frame = pandas.DataFrame({"a": [1, 2, 3]})
root = scipy.optimize.brentq(lambda v: v * v - 2, 0, 2)
fit = sklearn.linear_model.LinearRegression().fit([[0], [1], [2]], [1, 3, 5])
path = networkx.shortest_path(networkx.path_graph(4), 0, 3)
plt.plot([1, 2, 3])
plt.savefig("/tmp/plot.png")
print(x.tolist(), int(frame.a.sum()), round(root, 6), round(float(fit.coef_[0]), 6), path)
print(sympy.factor(sympy.Symbol("y") ** 2 - 1), sortedcontainers.SortedList([3, 1, 2]))
print(matplotlib.get_backend(), open("/tmp/plot.png", "rb").read(4))
"""


def test_the_scientific_stack_imports_and_computes(runner):
    result = runner.run(EvalRequest(code=EVERYTHING, image=SCIENCE, timeout_s=30))
    assert result.status == EvalStatus.SUCCEEDED, result.stderr[-2000:]
    assert (result.language, result.image) == ("python", SCIENCE)
    assert result.stdout.splitlines() == [
        "[1.0, 1.0] 6 1.414214 2.0 [0, 1, 2, 3]",
        "(y - 1)*(y + 1) SortedList([1, 2, 3])",
        "agg b'\\x89PNG'",
    ], result.stderr[-2000:]


def test_the_default_python_image_is_the_standard_library_alone(runner):
    result = runner.run(EvalRequest(code="import numpy"))
    assert (result.status, result.image) == (EvalStatus.FAILED, "python")
    assert "ModuleNotFoundError: No module named 'numpy'" in result.stderr


def test_no_compiler_or_package_manager_came_with_the_dependencies(runner):
    code = """
import importlib.util, os, shutil
tools = ["gcc", "g++", "cc", "c++", "ld", "as", "apt", "apt-get", "dpkg", "pip", "pip3"]
print(sorted(t for t in tools if shutil.which(t)))
print([m for m in ("pythran", "pip") if importlib.util.find_spec(m)])
print(os.path.exists("/usr/include/boost"), os.path.exists("/usr/include/python3.11/Python.h"))
"""
    result = runner.run(EvalRequest(code=code, image=SCIENCE))
    assert result.status == EvalStatus.SUCCEEDED, result.stderr
    assert result.stdout == "[]\n[]\nFalse False\n"


def test_one_thread_per_numerical_library_and_the_memory_limit_holds(runner):
    limit_mb = runner.policy.for_language(IMAGES[SCIENCE].policy_overrides).memory_mb
    code = f"""
import os, numpy
square = numpy.ones((400, 400))
square @ square  # OpenBLAS starts its thread pool (a thread per host core) by now
print(len(os.listdir("/proc/self/task")), flush=True)
block = numpy.ones(({limit_mb} + 64) << 17)  # 8-byte floats: 64 MiB beyond the limit, touched
print(block.sum())
"""
    result = runner.run(EvalRequest(code=code, image=SCIENCE, timeout_s=30))
    assert result.stdout.splitlines()[0] == "1", result.stderr[-1000:]
    assert result.status == EvalStatus.FAILED and result.oom_killed, result
    assert len(result.stdout.splitlines()) == 1  # it never got to print the sum
