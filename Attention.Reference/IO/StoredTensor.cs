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
    /// <summary>64-bit signed integer (read only, widened; magnitudes above 2^53 round to the nearest double).</summary>
    I64,
    /// <summary>32-bit signed integer (read only, widened exactly).</summary>
    I32,
    /// <summary>16-bit signed integer (read only, widened exactly).</summary>
    I16,
    /// <summary>8-bit signed integer (read only, widened exactly).</summary>
    I8,
    /// <summary>8-bit unsigned integer (read only, widened exactly).</summary>
    U8,
    /// <summary>Boolean, one byte (read only, widened to 0 or 1).</summary>
    BOOL,
}

/// <summary>A tensor as it was stored in a file: its element type, shape, and values widened exactly to double.</summary>
/// <param name="Name">The tensor's name in the file.</param>
/// <param name="DType">The element type in the file.</param>
/// <param name="Shape">The shape.</param>
/// <param name="Values">The values in C order, widened exactly to double (integers beyond ±2^53 round).</param>
public sealed record StoredTensor(string Name, StoredDType DType, int[] Shape, double[] Values)
{
    /// <summary>The tensor converted to <typeparamref name="T"/> (exact when widening).</summary>
    /// <exception cref="InvalidDataException">The stored type is an integer type: a float tensor is needed.</exception>
    public DenseTensor<T> ToTensor<T>() where T : IFloatingPointIeee754<T> => IsInteger
        ? throw new InvalidDataException($"Tensor '{Name}' is stored as {DType}; a floating-point tensor (F64, F32, F16, BF16) is needed.")
        : DenseTensor<T>.FromDoubles(Values, Shape);

    /// <summary>True for the integer and boolean types.</summary>
    public bool IsInteger => DType is not (StoredDType.F16 or StoredDType.BF16 or StoredDType.F32 or StoredDType.F64);

    /// <summary>Bytes per element of a stored type.</summary>
    public static int SizeOf(StoredDType dtype) => dtype switch
    {
        StoredDType.F16 or StoredDType.BF16 or StoredDType.I16 => 2,
        StoredDType.F32 or StoredDType.I32 => 4,
        StoredDType.F64 or StoredDType.I64 => 8,
        StoredDType.I8 or StoredDType.U8 or StoredDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown stored type."),
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

    /// <summary>
    /// The product of two non-negative numbers, false when it overflows a long. Sizes read from a file go through this
    /// so that a product that wraps cannot pass for a small one.
    /// </summary>
    internal static bool TryMultiply(long a, long b, out long product)
    {
        if (b != 0 && a > long.MaxValue / b)
        {
            product = 0;
            return false;
        }
        product = a * b;
        return true;
    }

    /// <summary>The stored type that holds <typeparamref name="T"/> exactly.</summary>
    public static StoredDType DTypeOf<T>() =>
        typeof(T) == typeof(float) ? StoredDType.F32
        : typeof(T) == typeof(double) ? StoredDType.F64
        : throw new NotSupportedException($"Cannot store elements of type {typeof(T).Name}; use float or double.");
}
