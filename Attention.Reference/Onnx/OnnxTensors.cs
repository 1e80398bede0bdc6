using System.Buffers.Binary;
using Attention.Reference.IO;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>
/// ONNX <c>TensorProto</c> to and from <see cref="OnnxValue{T}"/>: initializers, Constant attributes and the
/// backend-test <c>.pb</c> files. Sizes are computed with checked 64-bit arithmetic and checked against the stored
/// bytes before anything is allocated.
/// </summary>
public static class OnnxTensors
{
    /// <summary>Bytes per element of a stored type, or 0 for types this project does not read.</summary>
    public static int SizeOf(OnnxElementType type) => type switch
    {
        OnnxElementType.Float or OnnxElementType.Int32 or OnnxElementType.UInt32 => 4,
        OnnxElementType.Double or OnnxElementType.Int64 or OnnxElementType.UInt64 => 8,
        OnnxElementType.Float16 or OnnxElementType.BFloat16 or OnnxElementType.Int16 or OnnxElementType.UInt16 => 2,
        OnnxElementType.UInt8 or OnnxElementType.Int8 or OnnxElementType.Bool => 1,
        _ => 0,
    };

    /// <summary>Converts a TensorProto; <paramref name="where"/> names it in errors ("model.onnx: initializer 'w'").</summary>
    public static OnnxValue<T> ToValue<T>(TensorProto t, string where) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(t);
        var type = (OnnxElementType)t.DataType;
        int size = SizeOf(type);
        if (size == 0) throw new OnnxException($"{where}: element type {Describe(t.DataType)} is not supported");
        if (t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            throw new OnnxException($"{where}: the tensor's data is stored outside the model (external data is not supported)");
        if (t.Segment is not null) throw new OnnxException($"{where}: segmented tensors are not supported");
        var shape = Shape(t.Dims, where);
        int n = ShapeUtil.Volume(shape, where);
        int count = Count(t, type);
        if (t.RawData.Length > 0 || count == 0)
        {
            long expect = checked((long)n * size);
            if (count > 0) throw new OnnxException($"{where}: both raw_data and typed data are set");
            if (t.RawData.Length != expect)
                throw new OnnxException($"{where}: raw_data holds {t.RawData.Length} bytes, expected {expect} ({n} elements of {type}, shape {ShapeUtil.Format(shape)})");
            return FromRaw<T>(t.RawData.Span, type, shape, n);
        }
        if (count != n)
            throw new OnnxException($"{where}: holds {count} values, expected {n} (shape {ShapeUtil.Format(shape)})");
        return type switch
        {
            OnnxElementType.Float => OnnxValue<T>.Real(type, shape, t.FloatData.Select(T.CreateChecked).ToArray()),
            OnnxElementType.Double => OnnxValue<T>.Real(type, shape, t.DoubleData.Select(T.CreateChecked).ToArray()),
            OnnxElementType.Float16 => OnnxValue<T>.Real(type, shape, t.Int32Data.Select(v => T.CreateChecked((float)BitConverter.UInt16BitsToHalf((ushort)v))).ToArray()),
            OnnxElementType.BFloat16 => OnnxValue<T>.Real(type, shape, t.Int32Data.Select(v => T.CreateChecked(BitConverter.Int32BitsToSingle(v << 16))).ToArray()),
            OnnxElementType.Int64 => OnnxValue<T>.Integer(type, shape, t.Int64Data.ToArray()),
            OnnxElementType.UInt32 or OnnxElementType.UInt64 => OnnxValue<T>.Integer(type, shape, t.Uint64Data.Select(v => checked((long)v)).ToArray()),
            OnnxElementType.Bool => OnnxValue<T>.Boolean(shape, t.Int32Data.Select(v => v != 0).ToArray()),
            _ => OnnxValue<T>.Integer(type, shape, t.Int32Data.Select(v => (long)v).ToArray()),
        };
    }

    private static int Count(TensorProto t, OnnxElementType type) => type switch
    {
        OnnxElementType.Float => t.FloatData.Count,
        OnnxElementType.Double => t.DoubleData.Count,
        OnnxElementType.Int64 => t.Int64Data.Count,
        OnnxElementType.UInt32 or OnnxElementType.UInt64 => t.Uint64Data.Count,
        _ => t.Int32Data.Count,
    };

    private static OnnxValue<T> FromRaw<T>(ReadOnlySpan<byte> b, OnnxElementType type, int[] shape, int n) where T : IFloatingPointIeee754<T>
    {
        switch (type)
        {
            case OnnxElementType.Float or OnnxElementType.Double or OnnxElementType.Float16 or OnnxElementType.BFloat16:
            {
                var r = new T[n];
                for (int i = 0; i < n; i++)
                    r[i] = type switch
                    {
                        OnnxElementType.Float => T.CreateChecked(BinaryPrimitives.ReadSingleLittleEndian(b[(4 * i)..])),
                        OnnxElementType.Double => T.CreateChecked(BinaryPrimitives.ReadDoubleLittleEndian(b[(8 * i)..])),
                        OnnxElementType.Float16 => T.CreateChecked((float)BinaryPrimitives.ReadHalfLittleEndian(b[(2 * i)..])),
                        _ => T.CreateChecked(BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..]) << 16)),
                    };
                return OnnxValue<T>.Real(type, shape, r);
            }
            case OnnxElementType.Bool:
            {
                var r = new bool[n];
                for (int i = 0; i < n; i++) r[i] = b[i] != 0;
                return OnnxValue<T>.Boolean(shape, r);
            }
            default:
            {
                var r = new long[n];
                for (int i = 0; i < n; i++)
                    r[i] = type switch
                    {
                        OnnxElementType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b[(8 * i)..]),
                        OnnxElementType.UInt64 => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(b[(8 * i)..])),
                        OnnxElementType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b[(4 * i)..]),
                        OnnxElementType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b[(4 * i)..]),
                        OnnxElementType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b[(2 * i)..]),
                        OnnxElementType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b[(2 * i)..]),
                        OnnxElementType.Int8 => (sbyte)b[i],
                        _ => b[i],
                    };
                return OnnxValue<T>.Integer(type, shape, r);
            }
        }
    }

    /// <summary>Validated dimensions: each in [0, int.MaxValue] and a volume that fits in an int.</summary>
    public static int[] Shape(IReadOnlyList<long> dims, string where)
    {
        var shape = new int[dims.Count];
        long volume = 1;
        for (int i = 0; i < dims.Count; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue)
                throw new OnnxException($"{where}: dimension {i} is {dims[i]}");
            shape[i] = (int)dims[i];
            volume = volume == 0 ? 0 : checked(volume * dims[i]);
            if (volume > Array.MaxLength) throw new OnnxException($"{where}: shape [{string.Join(", ", dims)}] has more elements than an array may hold");
        }
        return shape;
    }

    /// <summary>The name of a TensorProto data type number.</summary>
    public static string Describe(int dataType) =>
        Enum.IsDefined(typeof(OnnxElementType), dataType) ? ((OnnxElementType)dataType).ToString() : $"#{dataType}";

    /// <summary>A TensorProto of <paramref name="value"/> (raw_data, little-endian) in its declared type, or as <paramref name="as"/>.</summary>
    public static TensorProto ToProto<T>(string name, OnnxValue<T> value, OnnxElementType? @as = null) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(value);
        var type = @as ?? value.ElementType;
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(value.Shape.Select(d => (long)d));
        int size = SizeOf(type);
        var raw = new byte[checked((long)value.Length * size)];
        for (int i = 0; i < value.Length; i++)
        {
            var span = raw.AsSpan(i * size);
            switch (type)
            {
                case OnnxElementType.Float: BinaryPrimitives.WriteSingleLittleEndian(span, float.CreateTruncating(value.Reals![i])); break;
                case OnnxElementType.Double: BinaryPrimitives.WriteDoubleLittleEndian(span, double.CreateTruncating(value.Reals![i])); break;
                case OnnxElementType.Int64: BinaryPrimitives.WriteInt64LittleEndian(span, value.Ints![i]); break;
                case OnnxElementType.Int32: BinaryPrimitives.WriteInt32LittleEndian(span, checked((int)value.Ints![i])); break;
                case OnnxElementType.Bool: span[0] = value.Bools![i] ? (byte)1 : (byte)0; break;
                default: throw new ArgumentException($"writing {type} tensors is not supported");
            }
        }
        t.RawData = ByteString.CopyFrom(raw);
        return t;
    }

    /// <summary>A float32 or float64 TensorProto of a dense tensor.</summary>
    public static TensorProto ToProto<T>(string name, DenseTensor<T> tensor, OnnxElementType type) where T : IFloatingPointIeee754<T> =>
        ToProto(name, OnnxValue<T>.FromTensor(type, tensor), type);

    /// <summary>Reads a serialized TensorProto file (the backend-test <c>input_0.pb</c>).</summary>
    public static TensorProto ReadProtoFile(string path)
    {
        var bytes = IO.InputFile.ReadAllBytes(path, int.MaxValue, "TensorProto (.pb) file");
        try
        {
            return TensorProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxException($"{path}: not a serialized ONNX TensorProto ({e.Message})", e);
        }
    }

    /// <summary>Writes a TensorProto file atomically.</summary>
    public static void WriteProtoFile(string path, TensorProto t)
    {
        ArgumentNullException.ThrowIfNull(t);
        AtomicFile.Write(path, s => t.WriteTo(s));
    }
}
