using System.Numerics;
using Attention.Reference.Tensors;

namespace Attention.Reference.Ops;

/// <summary>
/// The fast conv2d kernels (float and double), parallel via <see cref="Compute.For"/>, bitwise deterministic for
/// any thread count. See docs/derivations/conv2d.md for the formulas and the summation orders.
/// </summary>
public static class Conv2d
{
    /// <summary>Eq. (conv.1): the forward pass y = conv(x, w) + b; x [N, I, H, W] → y [N, O, Ho, Wo].</summary>
    public static DenseTensor<T> Forward<T>(DenseTensor<T> x, DenseTensor<T> weight, DenseTensor<T>? bias, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T> => Conv2dSpec.Forward(x, weight, bias, g);

    /// <summary>Eq. (conv.4): the input gradient dx [N, I, inH, inW] from dy [N, O, Ho, Wo].</summary>
    public static DenseTensor<T> BackwardInput<T>(DenseTensor<T> dy, DenseTensor<T> weight, Conv2dGeometry g, int inH, int inW)
        where T : IFloatingPointIeee754<T> => Conv2dSpec.BackwardInput(dy, weight, g, inH, inW);

    /// <summary>Eq. (conv.5): the weight gradient dw [O, I/G, kh, kw].</summary>
    public static DenseTensor<T> BackwardWeight<T>(DenseTensor<T> x, DenseTensor<T> dy, Conv2dGeometry g)
        where T : IFloatingPointIeee754<T> => Conv2dSpec.BackwardWeight(x, dy, g);

    /// <summary>Eq. (conv.6): the bias gradient db [O].</summary>
    public static DenseTensor<T> BackwardBias<T>(DenseTensor<T> dy) where T : IFloatingPointIeee754<T> => Conv2dSpec.BackwardBias(dy);
}
