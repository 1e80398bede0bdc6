namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// BatchNormalization, inference: Y = (X − mean) / sqrt(var + ε) · scale + B per channel (axis 1), evaluated as
/// written, left to right, with ε the float32 attribute widened exactly. (PyTorch's own eval BatchNorm computes
/// x·α + β with α = γ/√(σ²+ε), β = b − μα: the same value up to rounding.) training_mode = 1 is refused.
/// </summary>
internal sealed class BatchNormalization : IOnnxOp
{
    public string OpType => "BatchNormalization";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        if (node.Int("training_mode", 0) != 0) throw node.Error("training_mode = 1 is not supported (inference only)");
        if (node.Opset < 9 && node.Int("spatial", 1) != 1) throw node.Error("spatial = 0 is not supported");
        var x = node.RealInput(0);
        if (x.Rank < 2) throw node.Error($"X must have a channel axis, got {x}");
        int n = x.Shape[0], c = x.Shape[1], inner = x.Length / Math.Max(1, n * c);
        var p = new T[4][];
        for (int i = 0; i < 4; i++)
        {
            var v = node.RealInput(i + 1);
            if (v.Length != c) throw node.Error($"input {i + 1} must hold {c} values (one per channel), got {v}");
            p[i] = v.Reals!;
        }
        var (scale, bias, mean, var) = (p[0], p[1], p[2], p[3]);
        T eps = node.Float("epsilon", 1e-5f);
        var xs = x.Reals!;
        var y = new T[xs.Length];
        for (int img = 0; img < n; img++)
            for (int ch = 0; ch < c; ch++)
            {
                T den = T.Sqrt(var[ch] + eps);
                int o = (img * c + ch) * inner;
                for (int i = 0; i < inner; i++) y[o + i] = (xs[o + i] - mean[ch]) / den * scale[ch] + bias[ch];
            }
        return [node.RealLike(0, x.Shape, y)];
    }
}
