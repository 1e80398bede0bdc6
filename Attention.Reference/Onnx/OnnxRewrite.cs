using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>Model rewrites for running other backends on the same graph: float64 → float32, every node output visible.</summary>
public static class OnnxRewrite
{
    private const int Double = (int)TensorProto.Types.DataType.Double, Float = (int)TensorProto.Types.DataType.Float;

    /// <summary>
    /// A copy of <paramref name="model"/> with every float64 tensor, type and Cast target made float32 (initializers and
    /// Constant values rounded to nearest), for backends without float64 kernels (ONNX Runtime's CPU provider has no
    /// float64 Conv). Returns the model unchanged in content when it holds no float64.
    /// </summary>
    public static ModelProto ToFloat32(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var m = model.Clone();
        void Types(IEnumerable<ValueInfoProto> infos)
        {
            foreach (var v in infos)
                if (v.Type?.TensorType is { } tt && tt.ElemType == Double) tt.ElemType = Float;
        }
        var g = m.Graph;
        foreach (var t in g.Initializer) Narrow(t);
        Types(g.Input);
        Types(g.Output);
        Types(g.ValueInfo);
        foreach (var n in g.Node)
            foreach (var a in n.Attribute)
            {
                if (a.T is { } t) Narrow(t);
                if (n.OpType is "Cast" or "CastLike" && a.Name == "to" && a.I == Double) a.I = Float;
            }
        return m;
    }

    private static void Narrow(TensorProto t)
    {
        if (t.DataType != Double) return;
        t.DataType = Float;
        if (t.RawData.Length > 0)
        {
            var src = t.RawData.Span;
            var dst = new byte[src.Length / 2];
            for (int i = 0; i < dst.Length / 4; i++)
                BinaryPrimitives.WriteSingleLittleEndian(dst.AsSpan(4 * i), (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]));
            t.RawData = ByteString.CopyFrom(dst);
        }
        else
        {
            t.FloatData.AddRange(t.DoubleData.Select(v => (float)v));
            t.DoubleData.Clear();
        }
    }

    /// <summary>A copy whose graph outputs also list every node output (by name, in node order), for per-node dumps.</summary>
    public static ModelProto ExposeAllOutputs(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var m = model.Clone();
        var present = new HashSet<string>(m.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        foreach (var n in m.Graph.Node)
            foreach (var o in n.Output)
                if (o.Length > 0 && present.Add(o)) m.Graph.Output.Add(new ValueInfoProto { Name = o });
        return m;
    }
}
