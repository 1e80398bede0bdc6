namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// Add, Sub, Mul, Div, Pow with numpy broadcasting, one rounding per element (Pow: <c>T.Pow</c>, the exponent may be
/// an integer tensor). On integer tensors (shape arithmetic) the results are exact; Div truncates toward zero.
/// </summary>
internal sealed class Binary(string opType) : IOnnxOp
{
    public string OpType => opType;

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var a = node.Input(0);
        var b = node.Input(1);
        var shape = OnnxIndex.Broadcast(a.Shape, b.Shape);
        var ai = OnnxIndex.BroadcastIndex(shape, a.Shape);
        var bi = OnnxIndex.BroadcastIndex(shape, b.Shape);
        int n = ai.Length;
        if (a.Ints is { } x && b.Ints is { } y)
        {
            var r = new long[n];
            for (int i = 0; i < n; i++)
            {
                long u = x[ai[i]], v = y[bi[i]];
                r[i] = opType switch
                {
                    "Add" => checked(u + v),
                    "Sub" => checked(u - v),
                    "Mul" => checked(u * v),
                    "Div" => v == 0 ? throw node.Error("integer division by zero") : u / v,
                    _ => checked((long)Math.Pow(u, v)),
                };
            }
            return [OnnxValue<T>.Integer(a.ElementType, shape, r)];
        }
        if (opType == "Pow" && a.Ints is { } ib && b.Reals is { } eb)
        {
            // An integer base with a floating exponent: the result keeps the base's type (truncated toward zero).
            var r = new long[n];
            for (int i = 0; i < n; i++) r[i] = checked((long)Math.Pow(ib[ai[i]], double.CreateChecked(eb[bi[i]])));
            return [OnnxValue<T>.Integer(a.ElementType, shape, r)];
        }
        if (!a.IsReal || !(b.IsReal || opType == "Pow" && b.IsInteger))
            throw node.Error($"operands must both be floating (or both integer), got {a} and {b}");
        var ar = a.Reals!;
        var br = b.Reals ?? b.Ints!.Select(v => T.CreateChecked(v)).ToArray();
        var res = new T[n];
        switch (opType)
        {
            case "Add": for (int i = 0; i < n; i++) res[i] = ar[ai[i]] + br[bi[i]]; break;
            case "Sub": for (int i = 0; i < n; i++) res[i] = ar[ai[i]] - br[bi[i]]; break;
            case "Mul": for (int i = 0; i < n; i++) res[i] = ar[ai[i]] * br[bi[i]]; break;
            case "Div": for (int i = 0; i < n; i++) res[i] = ar[ai[i]] / br[bi[i]]; break;
            default: for (int i = 0; i < n; i++) res[i] = T.Pow(ar[ai[i]], br[bi[i]]); break;
        }
        return [OnnxValue<T>.Real(a.ElementType, shape, res)];
    }
}

/// <summary>Equal: elementwise a == b (broadcast) as bool; floating NaN is unequal to everything.</summary>
internal sealed class Equal : IOnnxOp
{
    public string OpType => "Equal";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var a = node.Input(0);
        var b = node.Input(1);
        if (a.IsReal != b.IsReal || a.IsInteger != b.IsInteger) throw node.Error($"operands must have the same kind, got {a} and {b}");
        var shape = OnnxIndex.Broadcast(a.Shape, b.Shape);
        var ai = OnnxIndex.BroadcastIndex(shape, a.Shape);
        var bi = OnnxIndex.BroadcastIndex(shape, b.Shape);
        var r = new bool[ai.Length];
        for (int i = 0; i < r.Length; i++)
            r[i] = a.Reals is { } x ? x[ai[i]] == b.Reals![bi[i]] : a.Ints is { } u ? u[ai[i]] == b.Ints![bi[i]] : a.Bools![ai[i]] == b.Bools![bi[i]];
        return [OnnxValue<T>.Boolean(shape, r)];
    }
}

/// <summary>Where(condition, X, Y): X where the condition holds, else Y, all three broadcast together.</summary>
internal sealed class Where : IOnnxOp
{
    public string OpType => "Where";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var c = node.Input(0);
        var x = node.Input(1);
        var y = node.Input(2);
        if (c.Bools is not { } cond) throw node.Error($"condition must be bool, got {c}");
        if (x.IsReal != y.IsReal || x.IsInteger != y.IsInteger) throw node.Error($"X and Y must have the same kind, got {x} and {y}");
        var shape = OnnxIndex.Broadcast(c.Shape, x.Shape, y.Shape);
        var ci = OnnxIndex.BroadcastIndex(shape, c.Shape);
        var xi = OnnxIndex.BroadcastIndex(shape, x.Shape);
        var yi = OnnxIndex.BroadcastIndex(shape, y.Shape);
        int n = ci.Length;
        if (x.Reals is { } xr)
            return [OnnxValue<T>.Real(x.ElementType, shape, Enumerable.Range(0, n).Select(i => cond[ci[i]] ? xr[xi[i]] : y.Reals![yi[i]]).ToArray())];
        if (x.Ints is { } xs)
            return [OnnxValue<T>.Integer(x.ElementType, shape, Enumerable.Range(0, n).Select(i => cond[ci[i]] ? xs[xi[i]] : y.Ints![yi[i]]).ToArray())];
        return [OnnxValue<T>.Boolean(shape, Enumerable.Range(0, n).Select(i => cond[ci[i]] ? x.Bools![xi[i]] : y.Bools![yi[i]]).ToArray())];
    }
}
