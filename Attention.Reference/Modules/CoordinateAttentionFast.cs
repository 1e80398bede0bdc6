using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>The float32 fast path of Coordinate Attention (placeholder: the generic oracle in float).</summary>
public static class CoordinateAttentionFast
{
    /// <summary>Forward in float32.</summary>
    public static CoordinateAttentionForward<float> Forward(DenseTensor<float> x, CoordinateAttentionParameters<float> p,
        bool training, double eps = 1e-5, double momentum = 0.1) =>
        CoordinateAttention.Forward(x, p, training, eps, momentum);

    /// <summary>Backward in float32.</summary>
    public static CoordinateAttentionGradients<float> Backward(CoordinateAttentionForward<float> fwd, DenseTensor<float> dy) =>
        CoordinateAttention.Backward(fwd, dy);
}
