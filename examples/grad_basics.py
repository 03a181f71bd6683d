"""grad, higher-order derivatives, and the derivative graph (and its DOT), in a few lines.

Run:  python examples/grad_basics.py [--dot grad.dot]
Then: dot -Tsvg grad.dot > grad.svg   (Graphviz, if installed)
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import funconv as fc


def loss(w, x):
    return fc.tanh(x @ w).sum()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dot", default=None, help="write the gradient's graph as Graphviz DOT here")
    args = ap.parse_args(argv)

    # 1. The gradient of a scalar function, with respect to its first argument.
    w = fc.ones((4, 3)) * 0.1
    x = fc.arange(8.0).reshape(2, 4)
    g = fc.grad(loss)(w, x)
    print("loss:", loss(w, x))
    print("grad wrt w (shape of w):\n", g)
    # check it by hand: d/dw sum(tanh(x w)) = x^T (1 - tanh(x w)^2)
    by_hand = np.asarray(x).T @ (1 - np.tanh(np.asarray(x) @ np.asarray(w)) ** 2)
    print("matches x^T (1 - tanh(xw)^2):", np.allclose(np.asarray(g), by_hand, rtol=1e-5))

    # 2. Higher order: grad of grad. d2/dt2 [sin(t) t] = 2 cos(t) - t sin(t).
    def f(t):
        return fc.sin(t) * t

    d2 = fc.grad(fc.grad(f))(fc.array(1.0))
    print(f"d2/dt2 [sin(t) t] at t=1: {float(d2):.6f} (exact {2 * math.cos(1) - math.sin(1):.6f})")
    d3 = fc.grad(fc.grad(fc.grad(f)))(fc.array(1.0))
    print(f"third derivative at t=1:  {float(d3):.6f} (exact {-3 * math.sin(1) - math.cos(1):.6f})")

    # 3. Forward mode and the Hessian.
    _, tangent = fc.jvp(f, (fc.array(1.0),), (fc.array(1.0),))
    print(f"jvp (forward mode) at t=1: {float(tangent):.6f}")
    h = fc.hessian(lambda v: (v * v * v).sum())(fc.array([1.0, 2.0]))
    print("hessian of sum(v^3) at [1, 2]:\n", h)

    # 4. The derivative is itself a graph: print it, and write it as DOT.
    graph = fc.make_graph(fc.grad(loss))(w, x)
    print("\nThe gradient of loss, as a graph (SSA; each line names the user line that made it):")
    print(graph)
    dot = graph.to_dot()
    if args.dot:
        with open(args.dot, "w") as fh:
            fh.write(dot + "\n")
        print(f"\nwrote {args.dot} ({len(graph.applies())} operations); render: dot -Tsvg {args.dot}")
    else:
        print("\nIts Graphviz DOT text starts with (pass --dot FILE to save it all):")
        print("\n".join(dot.splitlines()[:6]) + "\n  ...")
    return {"grad": g, "d2": float(d2), "d3": float(d3), "graph": graph, "dot": dot}


if __name__ == "__main__":
    main()
