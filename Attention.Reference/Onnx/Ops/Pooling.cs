namespace Attention.Reference.Onnx.Ops;

/// <summary>
/// GlobalAveragePool: Y[n, c, 1, 1] = (Σ X[n, c, ...]) / (spatial size), summed sequentially in increasing index
/// order from 0 and divided once: the project's adaptive average pool (docs/derivations, pool.1) exactly.
/// </summary>
internal sealed class GlobalAveragePool : IOnnxOp
{
    public string OpType => "GlobalAveragePool";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.RealInput(0);
        if (x.Rank < 3) throw node.Error($"X must be [N, C, spatial...], got {x}");
        int nc = x.Shape[0] * x.Shape[1], plane = x.Length / Math.Max(1, nc);
        T count = T.CreateChecked(plane);
        var xs = x.Reals!;
        var y = new T[nc];
        for (int p = 0; p < nc; p++)
        {
            T sum = T.Zero;
            for (int i = 0; i < plane; i++) sum += xs[p * plane + i];
            y[p] = sum / count;
        }
        var shape = x.Shape.Select((d, i) => i < 2 ? d : 1).ToArray();
        return [node.RealLike(0, shape, y)];
    }
}

/// <summary>The window geometry shared by AveragePool and MaxPool (2-D).</summary>
internal readonly record struct PoolWindow(int KH, int KW, int SH, int SW, int DH, int DW, int Top, int Left, int Bottom, int Right, int HO, int WO)
{
    public static PoolWindow Of<T>(OnnxNode<T> node, int h, int w) where T : IFloatingPointIeee754<T>
    {
        var ks = node.Ints("kernel_shape");
        if (ks is not { Length: 2 } || ks[0] < 1 || ks[1] < 1 || ks[0] > 1 << 20 || ks[1] > 1 << 20)
            throw node.Error("kernel_shape must give two positive sizes (only 2-D pooling is supported)");
        int kh = (int)ks[0], kw = (int)ks[1];
        var (sh, sw) = Conv.Pair(node, "strides");
        var (dh, dw) = Conv.Pair(node, "dilations");
        var (top, left, bottom, right) = Conv.Pads(node, h, w, (kh, kw), (sh, sw), (dh, dw));
        bool ceil = node.Int("ceil_mode", 0) != 0;
        int Out(int size, int lo, int hi, int k, int s, int d)
        {
            long span = (long)size + lo + hi - ((long)d * (k - 1) + 1);
            if (span < 0) throw node.Error($"the window ({kh}x{kw}) is larger than the padded input");
            long o = (ceil ? (span + s - 1) / s : span / s) + 1;
            // As PyTorch and ONNX: with ceil_mode, the last window must start inside the input or left padding.
            if (ceil && (o - 1) * s >= size + lo) o--;
            return (int)o;
        }
        var p = new PoolWindow(kh, kw, sh, sw, dh, dw, top, left, bottom, right, Out(h, top, bottom, kh, sh, dh), Out(w, left, right, kw, sw, dw));
        OnnxIndex.CheckedVolume([p.HO, p.WO], "the pooled plane");
        return p;
    }
}

/// <summary>
/// AveragePool (2-D): the mean of each window, summed sequentially over the window in row-major order from 0, then
/// divided once by the count: the window's positions inside the input (count_include_pad = 0, the default) or also
/// those in the explicit padding (count_include_pad = 1; never the positions a ceil_mode window adds past it).
/// </summary>
internal sealed class AveragePool : IOnnxOp
{
    public string OpType => "AveragePool";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.RealInput(0);
        if (x.Rank != 4) throw node.Error($"only 2-D pooling is supported, got X {x}");
        int nc = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var p = PoolWindow.Of(node, h, w);
        bool includePad = node.Int("count_include_pad", 0) != 0;
        var xs = x.Reals!;
        var y = new T[nc * p.HO * p.WO];
        for (int c = 0; c < nc; c++)
            for (int i = 0; i < p.HO; i++)
                for (int j = 0; j < p.WO; j++)
                {
                    T sum = T.Zero;
                    int count = 0;
                    for (int a = 0; a < p.KH; a++)
                        for (int b = 0; b < p.KW; b++)
                        {
                            int hh = i * p.SH - p.Top + a * p.DH, ww = j * p.SW - p.Left + b * p.DW;
                            bool inside = hh >= 0 && hh < h && ww >= 0 && ww < w;
                            bool inPad = hh >= -p.Top && hh < h + p.Bottom && ww >= -p.Left && ww < w + p.Right;
                            if (inside) sum += xs[(c * h + hh) * w + ww];
                            if (inside || includePad && inPad) count++;
                        }
                    y[(c * p.HO + i) * p.WO + j] = sum / T.CreateChecked(count);
                }
        return [node.RealLike(0, [x.Shape[0], x.Shape[1], p.HO, p.WO], y)];
    }
}

/// <summary>
/// MaxPool (2-D): the largest element of each window (padding never wins); NaN propagates, as in PyTorch. The
/// optional Indices output is not supported.
/// </summary>
internal sealed class MaxPool : IOnnxOp
{
    public string OpType => "MaxPool";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        if (node.WantsOutput(1)) throw node.Error("the Indices output is not supported");
        var x = node.RealInput(0);
        if (x.Rank != 4) throw node.Error($"only 2-D pooling is supported, got X {x}");
        int nc = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        var p = PoolWindow.Of(node, h, w);
        var xs = x.Reals!;
        var y = new T[nc * p.HO * p.WO];
        for (int c = 0; c < nc; c++)
            for (int i = 0; i < p.HO; i++)
                for (int j = 0; j < p.WO; j++)
                {
                    T m = T.NegativeInfinity;
                    for (int a = 0; a < p.KH; a++)
                        for (int b = 0; b < p.KW; b++)
                        {
                            int hh = i * p.SH - p.Top + a * p.DH, ww = j * p.SW - p.Left + b * p.DW;
                            if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                            T v = xs[(c * h + hh) * w + ww];
                            if (v > m || T.IsNaN(v)) m = v;
                            if (T.IsNaN(m)) break;
                        }
                    y[(c * p.HO + i) * p.WO + j] = m;
                }
        return [node.RealLike(0, [x.Shape[0], x.Shape[1], p.HO, p.WO], y)];
    }
}
