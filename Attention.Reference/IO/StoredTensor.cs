using System.Numerics;
using Attention.Reference.Tensors;

namespace Attention.Reference.IO;

/// <summary>Element types the readers understand.</summary>
public enum StoredDType
{
    /// <summary>IEEE binary16 (read only, widened).</summary>
    F16,
    /// <summary>bfloat16 (read only, widened).</summary>
    BF16,
    /// <summary>IEEE binary32.</summary>
    F32,
    /// <summary>IEEE binary64.</summary>
    F64,
}

/// <summary>A tensor as it was stored in a file: its element type, shape, and values widened exactly to double.</summary>
/// <param name="Name">The tensor's name in the file.</param>
/// <param name="DType">The element type in the file.</param>
/// <param name="Shape">The shape.</param>
/// <param name="Values">The values in C order, widened exactly to double.</param>
public sealed record StoredTensor(string Name, StoredDType DType, int[] Shape, double[] Values)
{
    /// <summary>The tensor converted to <typeparamref name="T"/> (exact when widening).</summary>
    public DenseTensor<T> ToTensor<T>() where T : IFloatingPointIeee754<T> => DenseTensor<T>.FromDoubles(Values, Shape);

    /// <summary>Bytes per element of a stored type.</summary>
    public static int SizeOf(StoredDType dtype) => dtype switch
    {
        StoredDType.F16 or StoredDType.BF16 => 2,
        StoredDType.F32 => 4,
        _ => 8,
    };
}

/// <summary>Helpers shared by the file formats.</summary>
public static class StoredTensors
{
    /// <summary>Stored tensors as a <see cref="TensorSet{T}"/>, in file order.</summary>
    public static TensorSet<T> ToTensorSet<T>(this IEnumerable<StoredTensor> tensors, string description)
        where T : IFloatingPointIeee754<T>
    {
        var set = new TensorSet<T>(description);
        foreach (var t in tensors) set.Set(t.Name, t.ToTensor<T>());
        return set;
    }

    /// <summary>The stored type that holds <typeparamref name="T"/> exactly.</summary>
    public static StoredDType DTypeOf<T>() =>
        typeof(T) == typeof(float) ? StoredDType.F32
        : typeof(T) == typeof(double) ? StoredDType.F64
        : throw new NotSupportedException($"Cannot store elements of type {typeof(T).Name}; use float or double.");
}
