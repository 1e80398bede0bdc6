using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Ops;

/// <summary>
/// The spec kernels of conv2d: plain loops that read exactly as the formulas of docs/derivations/conv2d.md, for
/// teaching and as the oracle the fast kernels (<see cref="Conv2d"/>) are tested against. Every sum is sequential,
/// in the index order written next to it, with a separate multiply and add (no FMA).
/// </summary>
public static class Conv2dSpec
{
    /// <summary>
    /// Eq. (conv.1): y[n,o,i,j] = b[o] + Σ_c Σ_p Σ_q w[o,c,p,q]·x[n, g·I/G + c, i·sh − ph + p·dh, j·sw − pw + q·dw],
    /// g = ⌊o / (O/G)⌋, terms outside the input (the zero padding) omitted. Sum order: acc = 0, then c, p, q
    /// increasing (q innermost), then the bias is added last.
    /// </summary>
    public static DenseTensor<T> Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        var (n, h, w, ho, wo) = Conv2dChecks.Input(x, weight, bias, g);
        int ig = g.InPerGroup, og = g.OutPerGroup;
        var y = new DenseTensor<T>(n, g.OutChannels, ho, wo);
        for (int b = 0; b < n; b++)
        for (int o = 0; o < g.OutChannels; o++)
        {
            int c0 = o / og * ig;
            for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++)
            {
                T acc = T.Zero;
                for (int c = 0; c < ig; c++)
                for (int p = 0; p < g.Kernel.H; p++)
                {
                    int hh = i * g.Stride.H - g.Padding.H + p * g.Dilation.H;
                    if (hh < 0 || hh >= h) continue;
                    for (int q = 0; q < g.Kernel.W; q++)
                    {
                        int ww = j * g.Stride.W - g.Padding.W + q * g.Dilation.W;
                        if (ww < 0 || ww >= w) continue;
                        acc += weight[o, c, p, q] * x[b, c0 + c, hh, ww];
                    }
                }
                y[b, o, i, j] = bias is null ? acc : acc + bias.Data[o];
            }
        }
        return y;
    }

    /// <summary>
    /// Eq. (conv.4): the input gradient, a transposed convolution:
    /// dx[n,ci,h,w] = Σ_o Σ_p Σ_q w[o,c,p,q]·dy[n,o,i,j] over the o of ci's group and the (p, q) with
    /// i = (h + ph − p·dh)/sh and j = (w + pw − q·dw)/sw integers inside the output. Sum order: o, p, q increasing.
    /// </summary>
    public static DenseTensor<T> BackwardInput<T>(DenseTensor<T> dy, DenseTensor<T> weight, Conv2dGeometry g, int inH, int inW)
        where T : IFloatingPointIeee754<T>
    {
        var (n, ho, wo) = Conv2dChecks.OutputGrad(dy, weight, g, inH, inW);
        int ig = g.InPerGroup, og = g.OutPerGroup;
        var dx = new DenseTensor<T>(n, g.InChannels, inH, inW);
        for (int b = 0; b < n; b++)
        for (int ci = 0; ci < g.InChannels; ci++)
        {
            int grp = ci / ig, c = ci % ig;
            for (int hh = 0; hh < inH; hh++)
            for (int ww = 0; ww < inW; ww++)
            {
                T acc = T.Zero;
                for (int o = grp * og; o < (grp + 1) * og; o++)
                for (int p = 0; p < g.Kernel.H; p++)
                {
                    int ti = hh + g.Padding.H - p * g.Dilation.H;
                    if (ti < 0 || ti % g.Stride.H != 0 || ti / g.Stride.H >= ho) continue;
                    int i = ti / g.Stride.H;
                    for (int q = 0; q < g.Kernel.W; q++)
                    {
                        int tj = ww + g.Padding.W - q * g.Dilation.W;
                        if (tj < 0 || tj % g.Stride.W != 0 || tj / g.Stride.W >= wo) continue;
                        acc += weight[o, c, p, q] * dy[b, o, i, tj / g.Stride.W];
                    }
                }
                dx[b, ci, hh, ww] = acc;
            }
        }
        return dx;
    }

    /// <summary>
    /// Eq. (conv.5): dw[o,c,p,q] = Σ_n Σ_i Σ_j dy[n,o,i,j]·x[n, g·I/G + c, i·sh − ph + p·dh, j·sw − pw + q·dw]
    /// (padding terms omitted). Sum order: n, i, j increasing.
    /// </summary>
    public static DenseTensor<T> BackwardWeight<T>(DenseTensor<T> x, DenseTensor<T> dy, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "NCHW");
        var (n, ho, wo) = Conv2dChecks.OutputGradForInput(dy, x, g);
        int h = x.Dim(2), w = x.Dim(3), ig = g.InPerGroup, og = g.OutPerGroup;
        var dw = new DenseTensor<T>(g.WeightShape);
        for (int o = 0; o < g.OutChannels; o++)
        {
            int c0 = o / og * ig;
            for (int c = 0; c < ig; c++)
            for (int p = 0; p < g.Kernel.H; p++)
            for (int q = 0; q < g.Kernel.W; q++)
            {
                T acc = T.Zero;
                for (int b = 0; b < n; b++)
                for (int i = 0; i < ho; i++)
                {
                    int hh = i * g.Stride.H - g.Padding.H + p * g.Dilation.H;
                    if (hh < 0 || hh >= h) continue;
                    for (int j = 0; j < wo; j++)
                    {
                        int ww = j * g.Stride.W - g.Padding.W + q * g.Dilation.W;
                        if (ww < 0 || ww >= w) continue;
                        acc += dy[b, o, i, j] * x[b, c0 + c, hh, ww];
                    }
                }
                dw[o, c, p, q] = acc;
            }
        }
        return dw;
    }

    /// <summary>Eq. (conv.6): db[o] = Σ_n Σ_i Σ_j dy[n,o,i,j]. Sum order: n, i, j increasing.</summary>
    public static DenseTensor<T> BackwardBias<T>(DenseTensor<T> dy) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(dy, "y.grad", 4, "NCHW");
        int n = dy.Dim(0), o = dy.Dim(1), plane = dy.Dim(2) * dy.Dim(3);
        var db = new DenseTensor<T>(o);
        for (int c = 0; c < o; c++)
        {
            T acc = T.Zero;
            for (int b = 0; b < n; b++)
            {
                int off = (b * o + c) * plane;
                for (int k = 0; k < plane; k++) acc += dy.Data[off + k];
            }
            db.Data[c] = acc;
        }
        return db;
    }
}

/// <summary>The shape checks shared by both kernels.</summary>
internal static class Conv2dChecks
{
    /// <summary>Checks x [N, I, H, W], weight and bias; returns N, H, W and the output size.</summary>
    public static (int N, int H, int W, int Ho, int Wo) Input<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        g.Validate();
        ShapeUtil.RequireRank(x, "x", 4, "NCHW");
        if (x.Dim(1) != g.InChannels)
            throw new ShapeMismatchException("x", $"[N, {g.InChannels}, H, W] (in_channels = {g.InChannels})", x.ShapeArray());
        ShapeUtil.Require(weight, "weight", g.OutChannels, g.InPerGroup, g.Kernel.H, g.Kernel.W);
        if (bias is not null) ShapeUtil.Require(bias, "bias", g.OutChannels);
        var (ho, wo) = g.OutputSize(x.Dim(2), x.Dim(3));
        return (x.Dim(0), x.Dim(2), x.Dim(3), ho, wo);
    }

    /// <summary>Checks dy [N, O, Ho, Wo] for an input of size (inH, inW) and the weight.</summary>
    public static (int N, int Ho, int Wo) OutputGrad<T>(DenseTensor<T> dy, DenseTensor<T> weight, Conv2dGeometry g, int inH, int inW)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(weight);
        ShapeUtil.Require(weight, "weight", g.OutChannels, g.InPerGroup, g.Kernel.H, g.Kernel.W);
        var (ho, wo) = g.OutputSize(inH, inW);
        ShapeUtil.RequireRank(dy, "y.grad", 4, "NCHW");
        ShapeUtil.Require(dy, "y.grad", dy.Dim(0), g.OutChannels, ho, wo);
        return (dy.Dim(0), ho, wo);
    }

    /// <summary>Checks dy against x.</summary>
    public static (int N, int Ho, int Wo) OutputGradForInput<T>(DenseTensor<T> dy, DenseTensor<T> x, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(x);
        g.Validate();
        ShapeUtil.RequireRank(x, "x", 4, "NCHW");
        if (x.Dim(1) != g.InChannels)
            throw new ShapeMismatchException("x", $"[N, {g.InChannels}, H, W] (in_channels = {g.InChannels})", x.ShapeArray());
        var (ho, wo) = g.OutputSize(x.Dim(2), x.Dim(3));
        ShapeUtil.RequireRank(dy, "y.grad", 4, "NCHW");
        ShapeUtil.Require(dy, "y.grad", x.Dim(0), g.OutChannels, ho, wo);
        return (x.Dim(0), ho, wo);
    }
}
