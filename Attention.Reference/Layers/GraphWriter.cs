namespace Attention.Reference.Layers;

/// <summary>
/// Where a layer writes its inference forward as graph nodes (ONNX: <c>Onnx/OnnxGraphBuilder</c>). Each layer's
/// <c>OnExport</c> sits beside its forward and writes the same arithmetic, operation for operation, so that an
/// evaluator of the graph that follows the operators' specs reproduces the layer bitwise.
/// </summary>
/// <typeparam name="T">The layer's element type.</typeparam>
public interface IGraphWriter<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Adds node <paramref name="op"/>(inputs) for <paramref name="owner"/>; returns its output's name.</summary>
    /// <param name="owner">The layer writing it (names come from its module path).</param>
    /// <param name="op">The operator.</param>
    /// <param name="inputs">Input names.</param>
    /// <param name="shape">The output's shape.</param>
    /// <param name="attributes">Attributes: long, long[], float or string values.</param>
    string Node(Layer<T> owner, string op, IReadOnlyList<string> inputs, int[] shape, IReadOnlyDictionary<string, object>? attributes = null);

    /// <summary>The shape of a value written so far.</summary>
    int[] Shape(string name);

    /// <summary>A named constant tensor (an initializer; state_dict names for parameters). Returns its name.</summary>
    string Tensor(string name, DenseTensor<T> value);

    /// <summary>A scalar constant of the element type, shared by value. Returns its name.</summary>
    string Scalar(double value);

    /// <summary>A 1-D int64 constant (shapes, axes), shared by value. Returns its name.</summary>
    string Int64s(params long[] values);
}
