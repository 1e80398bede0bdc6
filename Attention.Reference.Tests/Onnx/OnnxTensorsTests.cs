using Attention.Reference.Onnx;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Tests.Onnx;

/// <summary>
/// TensorProto reading: the data must hold exactly what the shape and type declare — too long is refused like too short
/// (trailing bytes or values are not ignored), and a tensor that is read holds the declared shape and the stored values.
/// </summary>
public sealed class OnnxTensorsTests
{
    private static TensorProto Raw(int bytes, params long[] dims)
    {
        var t = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(new byte[bytes]) };
        t.Dims.AddRange(dims);
        return t;
    }

    private static string Refusal(TensorProto t) => Assert.Throws<OnnxException>(() => OnnxTensors.ToValue<double>(t, "x.pb")).Message;

    [Fact]
    public void RawDataOfAnyOtherLengthIsRefused()
    {
        Assert.Equal([2, 3], OnnxTensors.ToValue<double>(Raw(24, 2, 3), "x.pb").Shape.ToArray());
        Assert.Contains("x.pb: raw_data holds 28 bytes, expected 24 (6 elements of Float, shape [2, 3])", Refusal(Raw(28, 2, 3)));
        Assert.Contains("x.pb: raw_data holds 20 bytes, expected 24", Refusal(Raw(20, 2, 3)));
        Assert.Contains("x.pb: raw_data holds 1 bytes, expected 0", Refusal(Raw(1, 0, 3)));
    }

    [Fact]
    public void TypedDataOfAnyOtherCountIsRefused()
    {
        static TensorProto Typed(int values)
        {
            var t = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float };
            t.Dims.AddRange([2, 2]);
            for (int i = 0; i < values; i++) t.FloatData.Add(i + 0.5f);
            return t;
        }
        var v = OnnxTensors.ToValue<double>(Typed(4), "x.pb");
        Assert.Equal([0.5, 1.5, 2.5, 3.5], v.Reals!);
        Assert.Contains("x.pb: holds 5 values, expected 4 (shape [2, 2])", Refusal(Typed(5)));
        Assert.Contains("x.pb: holds 3 values, expected 4 (shape [2, 2])", Refusal(Typed(3)));
    }

    [Fact]
    public void RawValuesAreTheStoredLittleEndianFloats()
    {
        var bytes = new byte[8];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 4), -1.25f);
        BitConverter.TryWriteBytes(bytes.AsSpan(4, 4), float.Epsilon);
        var t = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.Add(2);
        Assert.Equal([-1.25, (double)float.Epsilon], OnnxTensors.ToValue<double>(t, "x.pb").Reals!);
    }
}
