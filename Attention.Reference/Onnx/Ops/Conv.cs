using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// Conv (2-D): Y = conv(X, W) + B with <c>group</c>, <c>strides</c>, <c>dilations</c>, <c>pads</c> [top, left, bottom,
/// right] and <c>auto_pad</c> (NOTSET, VALID, SAME_UPPER, SAME_LOWER). Evaluated by the project's conv2d kernel in its
/// documented summation order (docs/derivations/conv2d.md), bias added last; unequal pads are applied as explicit zero
/// rows and columns first, which gives the same terms in the same order.
/// </summary>
internal sealed class Conv : IOnnxOp
{
    public string OpType => "Conv";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.RealInput(0);
        var w = node.RealInput(1);
        var b = node.Optional(2);
        if (x.Rank != 4 || w.Rank != 4) throw node.Error($"only 2-D convolutions are supported (X {x}, W {w})");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], wd = x.Shape[3];
        int m = w.Shape[0], kh = w.Shape[2], kw = w.Shape[3];
        int group = checked((int)node.Int("group", 1));
        if (group < 1 || c % group != 0 || m % group != 0 || w.Shape[1] != c / group)
            throw node.Error($"X {x} and W {w} do not fit group = {group} (W must be [M, C/group, kH, kW])");
        if (node.Ints("kernel_shape") is { } ks && (ks.Length != 2 || ks[0] != kh || ks[1] != kw))
            throw node.Error($"kernel_shape [{string.Join(", ", ks)}] does not match W {w}");
        var (sh, sw) = Pair(node, "strides");
        var (dh, dw) = Pair(node, "dilations");
        var (top, left, bottom, right) = Pads(node, h, wd, (kh, kw), (sh, sw), (dh, dw));
        if (b is not null && (!b.IsReal || b.Rank != 1 || b.Shape[0] != m)) throw node.Error($"B must be [{m}], got {b}");
        OnnxIndex.CheckedVolume([n, c, (long)h + top + bottom, (long)wd + left + right], "the padded input");
        OnnxIndex.CheckedVolume([n, m, ((long)h + top + bottom) / sh + 1, ((long)wd + left + right) / sw + 1], "the output");
        var xt = x.AsTensor("X");
        if (top != bottom || left != right)
        {
            xt = PadZeros(xt, top, left, bottom, right);
            (top, left, bottom, right) = (0, 0, 0, 0);
        }
        var g = new Conv2dGeometry(c, m, (kh, kw), (sh, sw), (top, left), (dh, dw), group);
        if (xt.Dim(2) + 2 * top < dh * (kh - 1) + 1 || xt.Dim(3) + 2 * left < dw * (kw - 1) + 1)
            throw node.Error($"the kernel ({kh}x{kw}, dilation {dh}x{dw}) is larger than the padded input {ShapeUtil.Format(x.Shape)}");
        var y = Conv2d.Forward(xt, w.AsTensor("W"), b?.AsTensor("B"), g);
        return [OnnxValue<T>.FromTensor(x.ElementType, y)];
    }

    internal static (int, int) Pair<T>(OnnxNode<T> node, string name) where T : IFloatingPointIeee754<T>
    {
        var v = node.Ints(name);
        if (v is null) return (1, 1);
        if (v.Length != 2 || v[0] < 1 || v[1] < 1 || v[0] > 1 << 20 || v[1] > 1 << 20) throw node.Error($"{name} must be two positive values, got [{string.Join(", ", v)}]");
        return ((int)v[0], (int)v[1]);
    }

    /// <summary>pads [top, left, bottom, right] from <c>pads</c> or <c>auto_pad</c> (the spec's SAME formula).</summary>
    internal static (int, int, int, int) Pads<T>(OnnxNode<T> node, int h, int w, (int H, int W) k, (int H, int W) s, (int H, int W) d)
        where T : IFloatingPointIeee754<T>
    {
        string auto = node.String("auto_pad", "NOTSET");
        if (auto is "NOTSET")
        {
            var p = node.Ints("pads");
            if (p is null) return (0, 0, 0, 0);
            if (p.Length != 4 || p.Any(v => v < 0 || v > 1 << 20)) throw node.Error($"pads must be four non-negative values, got [{string.Join(", ", p)}]");
            return ((int)p[0], (int)p[1], (int)p[2], (int)p[3]);
        }
        if (node.Has("pads")) throw node.Error($"pads and auto_pad = {auto} are both given");
        if (auto == "VALID") return (0, 0, 0, 0);
        if (auto is not ("SAME_UPPER" or "SAME_LOWER")) throw node.Error($"auto_pad '{auto}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        int Total(int size, int kk, int ss, int dd) => Math.Max(0, ((size + ss - 1) / ss - 1) * ss + (kk - 1) * dd + 1 - size);
        int th = Total(h, k.H, s.H, d.H), tw = Total(w, k.W, s.W, d.W);
        return auto == "SAME_UPPER" ? (th / 2, tw / 2, th - th / 2, tw - tw / 2) : (th - th / 2, tw - tw / 2, th / 2, tw / 2);
    }

    internal static DenseTensor<T> PadZeros<T>(DenseTensor<T> x, int top, int left, int bottom, int right) where T : IFloatingPointIeee754<T>
    {
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), hp = h + top + bottom, wp = w + left + right;
        var y = new DenseTensor<T>(n, c, hp, wp);
        for (int p = 0; p < n * c; p++)
            for (int i = 0; i < h; i++)
                x.Data.AsSpan((p * h + i) * w, w).CopyTo(y.Data.AsSpan((p * hp + i + top) * wp + left, w));
        return y;
    }
}
