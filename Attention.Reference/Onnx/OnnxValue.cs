namespace Attention.Reference.Onnx;

/// <summary>ONNX tensor element types (<c>TensorProto.DataType</c>) by their numbers in onnx.proto.</summary>
public enum OnnxElementType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>float32.</summary>
    Float = 1,
    /// <summary>uint8.</summary>
    UInt8 = 2,
    /// <summary>int8.</summary>
    Int8 = 3,
    /// <summary>uint16.</summary>
    UInt16 = 4,
    /// <summary>int16.</summary>
    Int16 = 5,
    /// <summary>int32.</summary>
    Int32 = 6,
    /// <summary>int64.</summary>
    Int64 = 7,
    /// <summary>string (not supported).</summary>
    String = 8,
    /// <summary>bool.</summary>
    Bool = 9,
    /// <summary>float16.</summary>
    Float16 = 10,
    /// <summary>float64.</summary>
    Double = 11,
    /// <summary>uint32.</summary>
    UInt32 = 12,
    /// <summary>uint64.</summary>
    UInt64 = 13,
    /// <summary>bfloat16.</summary>
    BFloat16 = 16,
}

/// <summary>
/// One value of an ONNX graph as the evaluator holds it: a tensor of reals (every floating ONNX type, evaluated in
/// <typeparamref name="T"/>: float64 for the oracle), of integers (every integer type, as 64-bit) or of booleans.
/// <see cref="ElementType"/> remembers the declared ONNX type, so that Cast, Shape and integer arithmetic follow the
/// graph's types.
/// </summary>
/// <typeparam name="T">The element type floating values are evaluated in.</typeparam>
public sealed class OnnxValue<T> where T : IFloatingPointIeee754<T>
{
    private OnnxValue(OnnxElementType type, int[] shape, T[]? reals, long[]? ints, bool[]? bools)
    {
        ElementType = type;
        Shape = shape;
        Reals = reals;
        Ints = ints;
        Bools = bools;
        int length = reals?.Length ?? ints?.Length ?? bools!.Length;
        if (length != ShapeUtil.Volume(shape, "shape"))
            throw new ArgumentException($"an ONNX value of shape {ShapeUtil.Format(shape)} cannot hold {length} elements");
    }

    /// <summary>The declared ONNX element type.</summary>
    public OnnxElementType ElementType { get; }

    /// <summary>The dimensions (empty for a scalar).</summary>
    public int[] Shape { get; }

    /// <summary>The values of a floating tensor, else null.</summary>
    public T[]? Reals { get; }

    /// <summary>The values of an integer tensor, else null.</summary>
    public long[]? Ints { get; }

    /// <summary>The values of a bool tensor, else null.</summary>
    public bool[]? Bools { get; }

    /// <summary>Number of elements.</summary>
    public int Length => Reals?.Length ?? Ints?.Length ?? Bools!.Length;

    /// <summary>Rank.</summary>
    public int Rank => Shape.Length;

    /// <summary>True for floating element types.</summary>
    public bool IsReal => Reals is not null;

    /// <summary>True for integer element types.</summary>
    public bool IsInteger => Ints is not null;

    /// <summary>True when <paramref name="type"/> is a floating type (held as reals).</summary>
    public static bool IsRealType(OnnxElementType type) =>
        type is OnnxElementType.Float or OnnxElementType.Double or OnnxElementType.Float16 or OnnxElementType.BFloat16;

    /// <summary>A floating tensor.</summary>
    public static OnnxValue<T> Real(OnnxElementType type, int[] shape, T[] values) =>
        IsRealType(type) ? new(type, shape, values, null, null) : throw new ArgumentException($"{type} is not a floating type");

    /// <summary>An integer tensor.</summary>
    public static OnnxValue<T> Integer(OnnxElementType type, int[] shape, long[] values) =>
        type is not (OnnxElementType.Bool or OnnxElementType.String or OnnxElementType.Undefined) && !IsRealType(type)
            ? new(type, shape, null, values, null) : throw new ArgumentException($"{type} is not an integer type");

    /// <summary>A bool tensor.</summary>
    public static OnnxValue<T> Boolean(int[] shape, bool[] values) => new(OnnxElementType.Bool, shape, null, null, values);

    /// <summary>A floating tensor of the same declared type as <paramref name="like"/>.</summary>
    public static OnnxValue<T> RealLike(OnnxValue<T> like, int[] shape, T[] values) => Real(like.ElementType, shape, values);

    /// <summary>Wraps a dense tensor (no copy).</summary>
    public static OnnxValue<T> FromTensor(OnnxElementType type, DenseTensor<T> t) => Real(type, t.ShapeArray(), t.Data);

    /// <summary>The values as a dense tensor (no copy); the value must be floating.</summary>
    public DenseTensor<T> AsTensor(string what) =>
        Reals is { } r ? new DenseTensor<T>(r, Shape) : throw new OnnxException($"{what} must be a floating tensor, got {ElementType}");

    /// <summary>Every element as a double (reals, integers, bools as 0/1): for dumps and outputs.</summary>
    public double[] ToDoubles() =>
        Reals is { } r ? r.Select(double.CreateTruncating).ToArray()
        : Ints is { } i ? i.Select(v => (double)v).ToArray()
        : Bools!.Select(b => b ? 1.0 : 0.0).ToArray();

    /// <summary>"float64[1, 3, 224, 224]".</summary>
    public override string ToString() => $"{ElementType}{ShapeUtil.Format(Shape)}";
}

/// <summary>A malformed or unsupported ONNX model or input: the message names the file, node, tensor and what is wrong.</summary>
public sealed class OnnxException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public OnnxException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public OnnxException(string message, Exception inner) : base(message, inner) { }
}
