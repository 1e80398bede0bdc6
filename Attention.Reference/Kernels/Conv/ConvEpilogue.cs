namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// An element-wise function applied by a convolution kernel to each segment of its output right after writing it
/// (bias already added), while the segment is in cache: an inference plan's fused activation. Each element is
/// transformed alone, so where and in which pieces it is applied changes no result.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public interface IConvEpilogue<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>values[i] ← f(values[i]).</summary>
    void Apply(Span<T> values);
}
