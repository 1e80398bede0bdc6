namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// ReduceSum and ReduceMean over <c>axes</c> (an attribute before opsets 13 and 18, an input since), keepdims
/// (default 1), noop_with_empty_axes. Each output element sums its inputs sequentially in increasing row-major
/// index order from 0; the mean divides that sum once by the count. Integer ReduceSum sums exactly.
/// </summary>
internal sealed class Reduce(string opType, bool mean) : IOnnxOp
{
    public string OpType => opType;

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        long[]? axes = node.Ints("axes");
        if (node.Optional(1) is not null)
        {
            if (axes is not null) throw node.Error("axes are given both as an attribute and as an input");
            axes = node.IntsInput(1);
        }
        bool keep = node.Int("keepdims", 1) != 0;
        if (axes is null or { Length: 0 })
        {
            if (node.Int("noop_with_empty_axes", 0) != 0) return [x];
            axes = Enumerable.Range(0, x.Rank).Select(a => (long)a).ToArray();
        }
        var reduced = new bool[x.Rank];
        foreach (var a in axes)
        {
            int ax = OnnxIndex.Axis(a, x.Rank, "axis");
            if (reduced[ax]) throw node.Error($"axis {a} is listed twice");
            reduced[ax] = true;
        }
        var outKeep = x.Shape.Select((d, i) => reduced[i] ? 1 : d).ToArray();
        int outLen = outKeep.Aggregate(1, (p, d) => p * d);
        // Every input element's output position, visited in increasing input index order.
        var strides = OnnxIndex.Strides(outKeep);
        var target = OnnxIndex.Walk(x.Shape, x.Shape.Select((_, i) => reduced[i] ? 0 : strides[i]).ToArray(), 0, x.Length);
        var shape = keep ? outKeep : x.Shape.Where((_, i) => !reduced[i]).ToArray();
        if (x.Ints is { } ints)
        {
            if (mean) throw node.Error("ReduceMean of an integer tensor is not supported");
            var s = new long[outLen];
            for (int i = 0; i < ints.Length; i++) s[target[i]] = checked(s[target[i]] + ints[i]);
            return [OnnxValue<T>.Integer(x.ElementType, shape, s)];
        }
        var xs = node.RealInput(0).Reals!;
        var sum = new T[outLen];
        for (int i = 0; i < xs.Length; i++) sum[target[i]] += xs[i];
        if (mean)
        {
            T count = T.CreateChecked(outLen == 0 ? 0 : xs.Length / outLen);
            for (int i = 0; i < outLen; i++) sum[i] /= count;
        }
        return [node.RealLike(0, shape, sum)];
    }
}
