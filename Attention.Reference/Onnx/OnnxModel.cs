using Attention.Reference.Onnx.Ops;
using Google.Protobuf;
using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>
/// An ONNX model read with the official onnx.proto messages (OnnxSharp on Google.Protobuf), checked before anything
/// runs: every node's operator is one this project evaluates, in the default domain, at a supported opset; every
/// node input is produced earlier (the graph is topologically sorted, as ONNX requires); initializers and Constant
/// nodes convert. Graph inputs that are also initializers are constants.
/// </summary>
public sealed class OnnxModel
{
    /// <summary>Lowest default-domain opset accepted (each operator reads its opset-dependent forms).</summary>
    public const int MinOpset = 1;

    /// <summary>Highest default-domain opset accepted (ONNX 1.19).</summary>
    public const int MaxOpset = 24;

    private OnnxModel(string source, ModelProto proto, int opset)
    {
        Source = source;
        Proto = proto;
        Opset = opset;
        var inits = new HashSet<string>(Graph.Initializer.Select(i => i.Name));
        Inputs = Graph.Input.Where(i => !inits.Contains(i.Name)).ToList();
        Outputs = Graph.Output.ToList();
    }

    /// <summary>The file it was read from (for messages).</summary>
    public string Source { get; }

    /// <summary>The parsed model.</summary>
    public ModelProto Proto { get; }

    /// <summary>The graph.</summary>
    public GraphProto Graph => Proto.Graph;

    /// <summary>The default-domain opset version.</summary>
    public int Opset { get; }

    /// <summary>The graph inputs a caller must give (those not also initializers).</summary>
    public IReadOnlyList<ValueInfoProto> Inputs { get; }

    /// <summary>The graph outputs.</summary>
    public IReadOnlyList<ValueInfoProto> Outputs { get; }

    /// <summary>The operators this project evaluates, by op_type.</summary>
    public static IReadOnlyCollection<string> SupportedOps => OnnxOps.All.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>Reads and checks a model file.</summary>
    public static OnnxModel Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file.", path);
        // Protobuf messages are at most 2 GB.
        return Parse(IO.InputFile.ReadAllBytes(path, int.MaxValue, "ONNX model"), path);
    }

    /// <summary>Parses and checks model bytes; <paramref name="source"/> names them in errors.</summary>
    public static OnnxModel Parse(byte[] bytes, string source)
    {
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxException($"{source}: not an ONNX model (protobuf: {e.Message})", e);
        }
        if (proto.Graph is null || proto.Graph.Node.Count == 0 && proto.Graph.Output.Count == 0)
            throw new OnnxException($"{source}: not an ONNX model (no graph)");
        int opset = -1;
        foreach (var o in proto.OpsetImport)
            if (o.Domain is "" or "ai.onnx") opset = checked((int)Math.Clamp(o.Version, int.MinValue, int.MaxValue));
        if (opset < 0) throw new OnnxException($"{source}: the model imports no default-domain (ai.onnx) opset");
        if (opset < MinOpset || opset > MaxOpset)
            throw new OnnxException($"{source}: opset {opset} is outside the supported range {MinOpset}–{MaxOpset}");
        var model = new OnnxModel(source, proto, opset);
        model.Check();
        return model;
    }

    private void Check()
    {
        var g = Graph;
        if (g.SparseInitializer.Count > 0) throw new OnnxException($"{Source}: sparse initializers are not supported");
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in g.Initializer)
        {
            if (i.Name.Length == 0) throw new OnnxException($"{Source}: an initializer has no name");
            if (!known.Add(i.Name)) throw new OnnxException($"{Source}: initializer '{i.Name}' is defined twice");
        }
        foreach (var i in Inputs)
            if (!known.Add(i.Name)) throw new OnnxException($"{Source}: graph input '{i.Name}' is defined twice");
        // A declared dimension is a value ≥ 0 or a symbolic name; a negative value is no size (not "unknown").
        foreach (var (v, what) in Inputs.Select(i => (i, "input")).Concat(g.Output.Select(o => (o, "output"))))
            if (v.Type?.TensorType?.Shape is { } shape)
                for (int d = 0; d < shape.Dim.Count; d++)
                    if (shape.Dim[d].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && shape.Dim[d].DimValue < 0)
                        throw new OnnxException(
                            $"{Source}: graph {what} '{v.Name}' declares dimension {d} = {shape.Dim[d].DimValue}; a dimension is a value ≥ 0 or a symbolic name");
        for (int n = 0; n < g.Node.Count; n++)
        {
            var node = g.Node[n];
            string who = $"node {n} {(node.Name.Length > 0 ? $"'{node.Name}' " : "")}({node.OpType})";
            if (node.Domain is not ("" or "ai.onnx"))
                throw new OnnxException($"{Source}: {who}: domain '{node.Domain}' is not supported (only the default ai.onnx operators)");
            if (!OnnxOps.All.ContainsKey(node.OpType))
                throw new OnnxException($"{Source}: {who}: operator {node.OpType} is not supported; supported: {string.Join(", ", OnnxOps.All.Keys.Order(StringComparer.Ordinal))}");
            foreach (var input in node.Input)
                if (input.Length > 0 && !known.Contains(input))
                    throw new OnnxException($"{Source}: {who}: input '{input}' is not a graph input, an initializer or an output of an earlier node");
            foreach (var output in node.Output)
                if (output.Length > 0 && !known.Add(output))
                    throw new OnnxException($"{Source}: {who}: output '{output}' is already defined");
        }
        foreach (var o in g.Output)
            if (!known.Contains(o.Name)) throw new OnnxException($"{Source}: graph output '{o.Name}' is produced by no node");
    }

    /// <summary>The declared element type and static shape of a graph input or output (dims without a value are -1).</summary>
    public static (OnnxElementType Type, long[]? Dims) Declared(ValueInfoProto v)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (v.Type?.TensorType is not { } tt) return (OnnxElementType.Undefined, null);
        var dims = tt.Shape is { } s ? s.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray() : null;
        return ((OnnxElementType)tt.ElemType, dims);
    }

    /// <summary>Evaluates the graph in <typeparamref name="T"/> (float64: the oracle).</summary>
    /// <param name="inputs">A value for every name in <see cref="Inputs"/>.</param>
    /// <param name="onNodeOutput">Called with every node output in evaluation (topological) order, when given.</param>
    public Dictionary<string, OnnxValue<T>> Run<T>(IReadOnlyDictionary<string, OnnxValue<T>> inputs,
        Action<string, OnnxValue<T>>? onNodeOutput = null) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var values = new Dictionary<string, OnnxValue<T>>(StringComparer.Ordinal);
        foreach (var init in Graph.Initializer)
            values[init.Name] = OnnxTensors.ToValue<T>(init, $"{Source}: initializer '{init.Name}'");
        foreach (var i in Inputs)
        {
            if (!inputs.TryGetValue(i.Name, out var v))
                throw new OnnxException($"{Source}: graph input '{i.Name}' was not given (inputs: {string.Join(", ", Inputs.Select(x => x.Name))})");
            CheckInput(i, v);
            values[i.Name] = v;
        }
        foreach (var name in inputs.Keys)
            if (!Inputs.Any(i => i.Name == name))
                throw new OnnxException($"{Source}: '{name}' is not a graph input (inputs: {string.Join(", ", Inputs.Select(x => x.Name))})");
        // Reference counts: an intermediate is dropped after its last use unless the caller watches every output.
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in Graph.Node)
            foreach (var input in node.Input)
                if (input.Length > 0) uses[input] = uses.GetValueOrDefault(input) + 1;
        var keep = new HashSet<string>(Graph.Output.Select(o => o.Name).Concat(Graph.Initializer.Select(i => i.Name)), StringComparer.Ordinal);
        for (int n = 0; n < Graph.Node.Count; n++)
        {
            var proto = Graph.Node[n];
            var args = proto.Input.Select(name => name.Length == 0 ? null : values[name]).ToArray();
            var node = new OnnxNode<T>(Source, proto, n, Opset, args);
            OnnxValue<T>?[] outs;
            try
            {
                outs = OnnxOps.All[proto.OpType].Run(node);
            }
            catch (Exception e) when (IsRefusal(e))
            {
                throw node.Error(e.Message);
            }
            for (int k = 0; k < proto.Output.Count; k++)
            {
                if (proto.Output[k].Length == 0) continue;
                var v = k < outs.Length ? outs[k] : null;
                if (v is null) throw node.Error($"output {k} ('{proto.Output[k]}') is not produced by this implementation");
                values[proto.Output[k]] = v;
                onNodeOutput?.Invoke(proto.Output[k], v);
            }
            if (onNodeOutput is null)
                foreach (var input in proto.Input)
                    if (input.Length > 0 && --uses[input] == 0 && !keep.Contains(input))
                        values.Remove(input);
        }
        return Graph.Output.ToDictionary(o => o.Name, o => values[o.Name], StringComparer.Ordinal);
    }

    /// <summary>
    /// Whether an exception from an operator is its refusal of the node (a shape, attribute or size the checks reject:
    /// reported as a bad model, exit 2) rather than a defect of this program. Index and range errors from the runtime
    /// (IndexOutOfRange, ArgumentOutOfRange, ArgumentNull, InvalidOperation, NullReference) are defects: they are not
    /// dressed up as refusals, so they reach the command as internal errors (exit 3) and the fuzz tests see them.
    /// </summary>
    private static bool IsRefusal(Exception e) =>
        e is OverflowException || (e is ArgumentException && e is not (ArgumentOutOfRangeException or ArgumentNullException));

    private void CheckInput<T>(ValueInfoProto info, OnnxValue<T> v) where T : IFloatingPointIeee754<T>
    {
        var (type, dims) = Declared(info);
        if (type != OnnxElementType.Undefined && OnnxValue<T>.IsRealType(type) != v.IsReal)
            throw new OnnxException($"{Source}: graph input '{info.Name}' is declared {type}, given {v}");
        if (dims is null) return;
        bool ok = dims.Length == v.Rank;
        for (int d = 0; ok && d < dims.Length; d++) ok = dims[d] < 0 || dims[d] == v.Shape[d];
        if (!ok)
            throw new OnnxException($"{Source}: graph input '{info.Name}' is declared [{string.Join(", ", dims.Select(d => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}], given {ShapeUtil.Format(v.Shape)}");
    }
}
