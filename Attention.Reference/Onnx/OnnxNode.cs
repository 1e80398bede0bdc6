using Onnx;

namespace Attention.Reference.Onnx;

/// <summary>
/// One ONNX operator, evaluated as its specification reads (onnx.ai/onnx/operators): every file under
/// <c>Onnx/Ops/</c> holds one operator (or a family that shares one formula) and says where its floating-point
/// results come from.
/// </summary>
internal interface IOnnxOp
{
    /// <summary>The operator's <c>op_type</c>.</summary>
    string OpType { get; }

    /// <summary>Evaluates the node; returns its outputs in order (a null output was not requested).</summary>
    OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>;
}

/// <summary>A node being evaluated: its inputs, attributes, opset, and errors that name it.</summary>
/// <typeparam name="T">The floating evaluation type.</typeparam>
public sealed class OnnxNode<T> where T : IFloatingPointIeee754<T>
{
    private readonly OnnxValue<T>?[] _inputs;

    internal OnnxNode(string source, NodeProto proto, int index, int opset, OnnxValue<T>?[] inputs)
    {
        Source = source;
        Proto = proto;
        Index = index;
        Opset = opset;
        _inputs = inputs;
    }

    /// <summary>The model file (for messages).</summary>
    public string Source { get; }

    /// <summary>The node.</summary>
    public NodeProto Proto { get; }

    /// <summary>Its position in the graph.</summary>
    public int Index { get; }

    /// <summary>The model's default-domain opset version.</summary>
    public int Opset { get; }

    /// <summary>"node 12 'Conv_3' (Conv)".</summary>
    public string Describe => $"node {Index} {(Proto.Name.Length > 0 ? $"'{Proto.Name}' " : "")}({Proto.OpType})";

    /// <summary>Number of inputs listed (empty names included).</summary>
    public int InputCount => _inputs.Length;

    /// <summary>Number of outputs listed.</summary>
    public int OutputCount => Proto.Output.Count;

    /// <summary>True when output <paramref name="i"/> is listed with a name.</summary>
    public bool WantsOutput(int i) => i < Proto.Output.Count && Proto.Output[i].Length > 0;

    /// <summary>An error naming the model and the node.</summary>
    public OnnxException Error(string what) => new($"{Source}: {Describe}: {what}");

    /// <summary>Input <paramref name="i"/>, or null when absent or given as "".</summary>
    public OnnxValue<T>? Optional(int i) => i < _inputs.Length ? _inputs[i] : null;

    /// <summary>Input <paramref name="i"/>, which must be present.</summary>
    public OnnxValue<T> Input(int i) =>
        Optional(i) ?? throw Error($"input {i} is required but {(i < _inputs.Length ? "empty" : "missing")}");

    /// <summary>Input <paramref name="i"/> as a floating tensor.</summary>
    public OnnxValue<T> RealInput(int i)
    {
        var v = Input(i);
        return v.IsReal ? v : throw Error($"input {i} ('{Proto.Input[i]}') must be a floating tensor, got {v}");
    }

    /// <summary>Input <paramref name="i"/> as 64-bit integers (shape, axes, indices).</summary>
    public long[] IntsInput(int i)
    {
        var v = Input(i);
        return v.Ints ?? throw Error($"input {i} ('{Proto.Input[i]}') must be an integer tensor, got {v}");
    }

    private AttributeProto? Attr(string name) => Proto.Attribute.FirstOrDefault(a => a.Name == name);

    /// <summary>True when the attribute is present.</summary>
    public bool Has(string name) => Attr(name) is not null;

    /// <summary>An INT attribute.</summary>
    public long Int(string name, long fallback) => Attr(name) is { } a ? Check(a, AttributeProto.Types.AttributeType.Int).I : fallback;

    /// <summary>A FLOAT attribute (float32 in the model; widened exactly to <typeparamref name="T"/>).</summary>
    public T Float(string name, float fallback) =>
        T.CreateChecked(Attr(name) is { } a ? Check(a, AttributeProto.Types.AttributeType.Float).F : fallback);

    /// <summary>An INTS attribute, or null.</summary>
    public long[]? Ints(string name) => Attr(name) is { } a ? Check(a, AttributeProto.Types.AttributeType.Ints).Ints.ToArray() : null;

    /// <summary>A STRING attribute.</summary>
    public string String(string name, string fallback) =>
        Attr(name) is { } a ? Check(a, AttributeProto.Types.AttributeType.String).S.ToStringUtf8() : fallback;

    /// <summary>A TENSOR attribute, or null.</summary>
    public TensorProto? Tensor(string name) => Attr(name) is { } a ? Check(a, AttributeProto.Types.AttributeType.Tensor).T : null;

    /// <summary>The names of the attributes present.</summary>
    public IEnumerable<string> AttributeNames => Proto.Attribute.Select(a => a.Name);

    private AttributeProto Check(AttributeProto a, AttributeProto.Types.AttributeType type)
    {
        if (a.RefAttrName.Length > 0) throw Error($"attribute '{a.Name}' refers to a function attribute (not supported)");
        // Old writers leave the type unset; trust the field that holds data then.
        if (a.Type != type && a.Type != AttributeProto.Types.AttributeType.Undefined)
            throw Error($"attribute '{a.Name}' must be {type}, got {a.Type}");
        return a;
    }

    /// <summary>A real tensor with the declared type of input <paramref name="like"/>.</summary>
    public OnnxValue<T> RealLike(int like, int[] shape, T[] values) => OnnxValue<T>.RealLike(RealInput(like), shape, values);
}
