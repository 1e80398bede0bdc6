using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Ops;

/// <summary>
/// The fast conv2d kernels (float and double; other element types fall back to <see cref="Conv2dSpec"/>):
/// implicit im2col packed into micro-panels and a register-blocked fused-multiply-add micro-kernel
/// (Vector512 where accelerated, else Vector256, else the portable <see cref="Vector{T}"/>), parallel over
/// independent output tiles via <see cref="Compute.For"/>. Every output element has one fixed summation order,
/// independent of the thread count and the vector width, so results are bitwise identical for any
/// <see cref="Compute.MaxThreads"/> (docs/derivations/conv2d.md, Eqs. (conv.7)–(conv.12)). The overloads taking
/// an output tensor allocate nothing once their per-thread workspaces are warm (apart from the closures and
/// tasks of the parallel loop).
/// </summary>
public static class Conv2d
{
    /// <summary>Eq. (conv.1): the forward pass y = conv(x, w) + b; x [N, I, H, W] → y [N, O, Ho, Wo].</summary>
    public static DenseTensor<T> Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        var (n, _, _, ho, wo) = Conv2dChecks.Input(x, weight, bias, g);
        var y = new DenseTensor<T>(n, g.OutChannels, ho, wo);
        Forward(x, weight, bias, g, y);
        return y;
    }

    /// <summary>Eq. (conv.1) into a preallocated <paramref name="y"/> [N, O, Ho, Wo] (every element is overwritten).</summary>
    public static void Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g, DenseTensor<T> y)
        where T : IFloatingPointIeee754<T>
    {
        var (n, _, _, ho, wo) = Conv2dChecks.Input(x, weight, bias, g);
        ArgumentNullException.ThrowIfNull(y);
        ShapeUtil.Require(y, "y", n, g.OutChannels, ho, wo);
        if (typeof(T) == typeof(float))
            Conv2dFast<float>.Forward(As<float, T>(x), As<float, T>(weight), AsOrNull<float, T>(bias), g, As<float, T>(y));
        else if (typeof(T) == typeof(double))
            Conv2dFast<double>.Forward(As<double, T>(x), As<double, T>(weight), AsOrNull<double, T>(bias), g, As<double, T>(y));
        else
            Conv2dSpec.Forward(x, weight, bias, g).Data.CopyTo(y.Data, 0);
    }

    /// <summary>
    /// Eq. (conv.1) into <paramref name="y"/>, then <paramref name="epilogue"/> applied by the kernel to each piece of
    /// the output as it is written (float and double only; inference plans fuse their activations this way).
    /// </summary>
    public static void Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g, DenseTensor<T> y,
        IConvEpilogue<T>? epilogue) where T : IFloatingPointIeee754<T> => Forward(x, weight, bias, g, y, epilogue, null);

    /// <summary>
    /// As above, with <paramref name="pack"/> keeping the weights' packing between calls: only for weights that never
    /// change after its first use (an inference plan's folded convolutions).
    /// </summary>
    internal static void Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g, DenseTensor<T> y,
        IConvEpilogue<T>? epilogue, ConvWeightPack? pack) where T : IFloatingPointIeee754<T>
    {
        if (epilogue is null && pack is null) { Forward(x, weight, bias, g, y); return; }
        var (n, _, _, ho, wo) = Conv2dChecks.Input(x, weight, bias, g);
        ArgumentNullException.ThrowIfNull(y);
        ShapeUtil.Require(y, "y", n, g.OutChannels, ho, wo);
        if (typeof(T) == typeof(float))
            Conv2dFast<float>.Forward(As<float, T>(x), As<float, T>(weight), AsOrNull<float, T>(bias), g, As<float, T>(y),
                (IConvEpilogue<float>?)epilogue, pack);
        else if (typeof(T) == typeof(double))
            Conv2dFast<double>.Forward(As<double, T>(x), As<double, T>(weight), AsOrNull<double, T>(bias), g, As<double, T>(y),
                (IConvEpilogue<double>?)epilogue, pack);
        else
        {
            Forward(x, weight, bias, g, y);
            epilogue?.Apply(y.Data);
        }
    }

    /// <summary>
    /// Whether <see cref="ForwardWinograd{T}"/> runs <paramref name="g"/> on an <paramref name="h"/> × <paramref name="w"/>
    /// input in an inference plan (<see cref="ConvDispatch.Winograd{TF}"/>: float32 only).
    /// </summary>
    internal static bool WinogradPays<T>(Conv2dGeometry g, int h, int w) where T : IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) && ConvDispatch.Winograd<float>(g, h, w);

    /// <summary>
    /// Eq. (conv.W1): y = conv(x, w) + bias, then the epilogue, by Winograd F(2×2, 3×3) (inference plans only, float32;
    /// <paramref name="pack"/> keeps the transformed weights: only for weights that never change).
    /// </summary>
    internal static void ForwardWinograd<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g,
        DenseTensor<T> y, IConvEpilogue<T>? epilogue, ConvWeightPack pack) where T : IFloatingPointIeee754<T>
    {
        var (n, _, _, ho, wo) = Conv2dChecks.Input(x, weight, bias, g);
        ArgumentNullException.ThrowIfNull(y);
        ShapeUtil.Require(y, "y", n, g.OutChannels, ho, wo);
        if (typeof(T) != typeof(float)) throw new NotSupportedException("Winograd convolution is float32 only.");
        Conv2dFast<float>.ForwardWinograd(As<float, T>(x), As<float, T>(weight), AsOrNull<float, T>(bias), g, As<float, T>(y),
            (IConvEpilogue<float>?)epilogue, pack);
    }

    /// <summary>Eq. (conv.4): the input gradient dx [N, I, inH, inW] from dy [N, O, Ho, Wo].</summary>
    public static DenseTensor<T> BackwardInput<T>(DenseTensor<T> dy, DenseTensor<T> weight, Conv2dGeometry g, int inH, int inW)
        where T : IFloatingPointIeee754<T>
    {
        var (n, _, _) = Conv2dChecks.OutputGrad(dy, weight, g, inH, inW);
        var dx = new DenseTensor<T>(n, g.InChannels, inH, inW);
        BackwardInput(dy, weight, g, dx);
        return dx;
    }

    /// <summary>Eq. (conv.4) into a preallocated <paramref name="dx"/> [N, I, H, W] (every element is overwritten).</summary>
    public static void BackwardInput<T>(DenseTensor<T> dy, DenseTensor<T> weight, Conv2dGeometry g, DenseTensor<T> dx)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(dx);
        ShapeUtil.RequireRank(dx, "x.grad", 4, "NCHW");
        var (n, _, _) = Conv2dChecks.OutputGrad(dy, weight, g, dx.Dim(2), dx.Dim(3));
        ShapeUtil.Require(dx, "x.grad", n, g.InChannels, dx.Dim(2), dx.Dim(3));
        if (typeof(T) == typeof(float))
            Conv2dFast<float>.BackwardInput(As<float, T>(dy), As<float, T>(weight), g, As<float, T>(dx));
        else if (typeof(T) == typeof(double))
            Conv2dFast<double>.BackwardInput(As<double, T>(dy), As<double, T>(weight), g, As<double, T>(dx));
        else
            Conv2dSpec.BackwardInput(dy, weight, g, dx.Dim(2), dx.Dim(3)).Data.CopyTo(dx.Data, 0);
    }

    /// <summary>Eq. (conv.5): the weight gradient dw [O, I/G, kh, kw].</summary>
    public static DenseTensor<T> BackwardWeight<T>(DenseTensor<T> x, DenseTensor<T> dy, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T>
    {
        Conv2dChecks.OutputGradForInput(dy, x, g);
        var dw = new DenseTensor<T>(g.WeightShape);
        BackwardWeight(x, dy, g, dw);
        return dw;
    }

    /// <summary>Eq. (conv.5) into a preallocated <paramref name="dw"/> [O, I/G, kh, kw] (every element is overwritten).</summary>
    public static void BackwardWeight<T>(DenseTensor<T> x, DenseTensor<T> dy, Conv2dGeometry g, DenseTensor<T> dw)
        where T : IFloatingPointIeee754<T>
    {
        Conv2dChecks.OutputGradForInput(dy, x, g);
        ArgumentNullException.ThrowIfNull(dw);
        ShapeUtil.Require(dw, "weight.grad", g.OutChannels, g.InPerGroup, g.Kernel.H, g.Kernel.W);
        if (typeof(T) == typeof(float))
            Conv2dFast<float>.BackwardWeight(As<float, T>(x), As<float, T>(dy), g, As<float, T>(dw));
        else if (typeof(T) == typeof(double))
            Conv2dFast<double>.BackwardWeight(As<double, T>(x), As<double, T>(dy), g, As<double, T>(dw));
        else
            Conv2dSpec.BackwardWeight(x, dy, g).Data.CopyTo(dw.Data, 0);
    }

    /// <summary>Eq. (conv.6): the bias gradient db [O].</summary>
    public static DenseTensor<T> BackwardBias<T>(DenseTensor<T> dy) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(dy);
        ShapeUtil.RequireRank(dy, "y.grad", 4, "NCHW");
        var db = new DenseTensor<T>(dy.Dim(1));
        BackwardBias(dy, db);
        return db;
    }

    /// <summary>Eq. (conv.6) into a preallocated <paramref name="db"/> [O]. Same summation order as the spec kernel.</summary>
    public static void BackwardBias<T>(DenseTensor<T> dy, DenseTensor<T> db) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(db);
        ShapeUtil.RequireRank(dy, "y.grad", 4, "NCHW");
        ShapeUtil.Require(db, "bias.grad", dy.Dim(1));
        if (typeof(T) == typeof(float)) Conv2dFast<float>.BackwardBias(As<float, T>(dy), As<float, T>(db));
        else if (typeof(T) == typeof(double)) Conv2dFast<double>.BackwardBias(As<double, T>(dy), As<double, T>(db));
        else Conv2dSpec.BackwardBias(dy).Data.CopyTo(db.Data, 0);
    }

    private static DenseTensor<TTo> As<TTo, TFrom>(DenseTensor<TFrom> t)
        where TTo : IFloatingPointIeee754<TTo> where TFrom : IFloatingPointIeee754<TFrom> => (DenseTensor<TTo>)(object)t;

    private static DenseTensor<TTo>? AsOrNull<TTo, TFrom>(DenseTensor<TFrom>? t)
        where TTo : IFloatingPointIeee754<TTo> where TFrom : IFloatingPointIeee754<TFrom> => t is null ? null : (DenseTensor<TTo>)(object)t;
}
