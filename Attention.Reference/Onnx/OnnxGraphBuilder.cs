using System.Globalization;
using Attention.Reference.Layers;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>
/// Builds an ONNX graph from a layer tree's <c>Export</c>: node names <c>/path/to/module/Op</c> and outputs
/// <c>/path/to/module/Op_output_0</c> as PyTorch's exporter names them, initializers under their state_dict names,
/// shared scalar and int64 constants, and a value_info shape for every node output.
/// </summary>
/// <typeparam name="T">The element type (float64: the exported model is float64).</typeparam>
public sealed class OnnxGraphBuilder<T> : IGraphWriter<T> where T : IFloatingPointIeee754<T>
{
    private readonly GraphProto _graph = new() { Name = "attention-ref" };
    private readonly Dictionary<string, int[]> _shapes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);

    private static int ElemType => typeof(T) == typeof(float) ? (int)TensorProto.Types.DataType.Float : (int)TensorProto.Types.DataType.Double;

    /// <summary>Declares the graph input.</summary>
    public string Input(string name, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        _graph.Input.Add(Info(name, ElemType, shape));
        _shapes[name] = shape;
        _names.Add(name);
        return name;
    }

    /// <inheritdoc />
    public int[] Shape(string name) => _shapes.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"no value '{name}' in the graph");

    /// <inheritdoc />
    public string Node(Layer<T> owner, string op, IReadOnlyList<string> inputs, int[] shape, IReadOnlyDictionary<string, object>? attributes = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(inputs);
        string scope = string.IsNullOrEmpty(owner.Path) ? "" : "/" + owner.Path.Replace('.', '/');
        string name = Unique($"{scope}/{op}");
        var node = new NodeProto { Name = name, OpType = op };
        node.Input.AddRange(inputs);
        string output = name + "_output_0";
        node.Output.Add(output);
        if (attributes is not null)
            foreach (var (key, value) in attributes) node.Attribute.Add(Attribute(key, value));
        _graph.Node.Add(node);
        _names.Add(output);
        _shapes[output] = shape;
        return output;
    }

    /// <inheritdoc />
    public string Tensor(string name, DenseTensor<T> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (!_names.Add(name)) throw new ArgumentException($"the graph already has a value named '{name}'");
        _graph.Initializer.Add(OnnxTensors.ToProto(name, value, (OnnxElementType)ElemType));
        _shapes[name] = value.ShapeArray();
        return name;
    }

    /// <inheritdoc />
    public string Scalar(double value)
    {
        string key = "s:" + value.ToString("R", CultureInfo.InvariantCulture);
        if (_constants.TryGetValue(key, out var n)) return n;
        n = Unique("/Constant_" + value.ToString("R", CultureInfo.InvariantCulture).Replace('-', 'm').Replace('.', 'p'));
        var t = new DenseTensor<T>([T.CreateChecked(value)], []);
        _graph.Initializer.Add(OnnxTensors.ToProto(n, t, (OnnxElementType)ElemType));
        _shapes[n] = [];
        return _constants[key] = n;
    }

    /// <inheritdoc />
    public string Int64s(params long[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        string key = "i:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var n)) return n;
        n = Unique("/Constant_int64_" + string.Join("_", values).Replace('-', 'm'));
        _graph.Initializer.Add(OnnxTensors.ToProto(n, OnnxValue<T>.Integer(OnnxElementType.Int64, [values.Length], values)));
        _shapes[n] = [values.Length];
        return _constants[key] = n;
    }

    /// <summary>The finished model: opset 17, the given output renamed to <paramref name="outputName"/>.</summary>
    public ModelProto Finish(string output, string outputName, string docString)
    {
        // Rename the last node's output to the graph output name, as PyTorch's exporter does.
        foreach (var node in _graph.Node)
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == output) node.Input[i] = outputName;
        var producer = _graph.Node.Last(n => n.Output.Contains(output));
        producer.Output[producer.Output.IndexOf(output)] = outputName;
        _shapes[outputName] = Shape(output);
        foreach (var node in _graph.Node)
            foreach (var o in node.Output)
                if (o != outputName && _shapes.TryGetValue(o, out var s)) _graph.ValueInfo.Add(Info(o, ElemType, s));
        _graph.Output.Add(Info(outputName, ElemType, _shapes[outputName]));
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "attention-ref",
            ProducerVersion = typeof(OnnxGraphBuilder<T>).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }

    private string Unique(string name)
    {
        if (!_names.Contains(name) && !_names.Contains(name + "_output_0")) return name;
        for (int k = 1; ; k++)
            if (!_names.Contains($"{name}_{k}") && !_names.Contains($"{name}_{k}_output_0")) return $"{name}_{k}";
    }

    private static ValueInfoProto Info(string name, int elemType, int[] shape)
    {
        var tt = new TypeProto.Types.Tensor { ElemType = elemType, Shape = new TensorShapeProto() };
        foreach (var d in shape) tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tt } };
    }

    private static AttributeProto Attribute(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
            case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
            case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
            case string s: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
            case int[] ints: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(ints.Select(v => (long)v)); break;
            case long[] longs: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(longs); break;
            default: throw new ArgumentException($"attribute '{name}': unsupported value type {value.GetType().Name}");
        }
        return a;
    }
}
