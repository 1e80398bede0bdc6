namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// Gemm: Y = α·A'·B' + β·C (A' = Aᵀ when transA, B' likewise; C broadcast to [M, N]). Each element's dot product is
/// summed in increasing k from 0 (multiply, round, add, round), as the project's Linear layer does; α and β
/// multiply only when they are not 1 (so that α = β = 1, what PyTorch exports for nn.Linear, is exactly acc + c).
/// </summary>
internal sealed class Gemm : IOnnxOp
{
    public string OpType => "Gemm";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var a = node.RealInput(0);
        var b = node.RealInput(1);
        var c = node.Optional(2);
        if (a.Rank != 2 || b.Rank != 2) throw node.Error($"A and B must be matrices, got {a} and {b}");
        bool ta = node.Int("transA", 0) != 0, tb = node.Int("transB", 0) != 0;
        T alpha = node.Float("alpha", 1f), beta = node.Float("beta", 1f);
        int m = ta ? a.Shape[1] : a.Shape[0], k = ta ? a.Shape[0] : a.Shape[1];
        int kb = tb ? b.Shape[1] : b.Shape[0], n = tb ? b.Shape[0] : b.Shape[1];
        if (k != kb) throw node.Error($"A' is [{m}, {k}] but B' is [{kb}, {n}]");
        int[]? cIndex = null;
        if (c is not null)
        {
            if (!c.IsReal) throw node.Error($"C must be floating, got {c}");
            if (OnnxIndex.Broadcast([m, n], c.Shape) is var s && (s.Length != 2 || s[0] != m || s[1] != n))
                throw node.Error($"C {c} does not broadcast to [{m}, {n}]");
            cIndex = OnnxIndex.BroadcastIndex([m, n], c.Shape);
        }
        var ad = a.Reals!;
        var bd = b.Reals!;
        var y = new T[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T acc = T.Zero;
                for (int kk = 0; kk < k; kk++)
                    acc += (ta ? ad[kk * m + i] : ad[i * k + kk]) * (tb ? bd[j * k + kk] : bd[kk * n + j]);
                if (alpha != T.One) acc = alpha * acc;
                if (cIndex is not null)
                {
                    T cv = c!.Reals![cIndex[i * n + j]];
                    acc += beta == T.One ? cv : beta * cv;
                }
                y[i * n + j] = acc;
            }
        return [node.RealLike(0, [m, n], y)];
    }
}

/// <summary>
/// MatMul with numpy semantics: 1-D operands are promoted and the promoted axis removed, leading axes broadcast.
/// Each element sums in increasing k from 0 (multiply, round, add, round).
/// </summary>
internal sealed class MatMul : IOnnxOp
{
    public string OpType => "MatMul";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var a = node.RealInput(0);
        var b = node.RealInput(1);
        if (a.Rank == 0 || b.Rank == 0) throw node.Error("MatMul operands must have rank at least 1");
        var ash = a.Rank == 1 ? new[] { 1, a.Shape[0] } : a.Shape;
        var bsh = b.Rank == 1 ? new[] { b.Shape[0], 1 } : b.Shape;
        int m = ash[^2], k = ash[^1], kb = bsh[^2], n = bsh[^1];
        if (k != kb) throw node.Error($"inner dimensions differ: {a} and {b}");
        var batch = OnnxIndex.Broadcast(ash[..^2], bsh[..^2]);
        int nb = batch.Aggregate(1, (p, d) => checked(p * d));
        var ai = OnnxIndex.BroadcastIndex(batch, ash[..^2]);
        var bi = OnnxIndex.BroadcastIndex(batch, bsh[..^2]);
        var ad = a.Reals!;
        var bd = b.Reals!;
        var y = new T[checked(nb * m * n)];
        for (int p = 0; p < nb; p++)
        {
            int ao = ai[p] * m * k, bo = bi[p] * k * n, yo = p * m * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    T acc = T.Zero;
                    for (int kk = 0; kk < k; kk++) acc += ad[ao + i * k + kk] * bd[bo + kk * n + j];
                    y[yo + i * n + j] = acc;
                }
        }
        var shape = batch.ToList();
        if (a.Rank > 1) shape.Add(m);
        if (b.Rank > 1) shape.Add(n);
        return [node.RealLike(0, shape.ToArray(), y)];
    }
}
