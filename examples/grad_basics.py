"""grad, higher-order derivatives, and the derivative graph, in a few lines.

Run: python examples/grad_basics.py
"""

import funconv as fc


def loss(w, x):
    return fc.tanh(x @ w).sum()


def main():
    w = fc.ones((4, 3)) * 0.1
    x = fc.arange(8.0).reshape(2, 4)
    print("loss:", loss(w, x))
    print("grad wrt w:\n", fc.grad(loss)(w, x))

    f = lambda t: fc.sin(t) * t  # noqa: E731
    d2 = fc.grad(fc.grad(f))
    print("d2/dt2 [sin(t) t] at t=1:", d2(fc.array(1.0)))

    print("\nThe derivative is itself a graph:")
    print(fc.make_graph(fc.grad(loss))(w, x))


if __name__ == "__main__":
    main()
