using Attention.Reference.IO;

namespace Attention.Reference.Onnx;

/// <summary>The result of running an ONNX model: the graph outputs and, when asked, every node output.</summary>
/// <typeparam name="T">The evaluation type.</typeparam>
/// <param name="Outputs">Every graph output under its ONNX name, in graph order (integer and bool outputs as numbers).</param>
/// <param name="Dump">Every node output under its ONNX tensor name, in evaluation (topological) order, or null.</param>
public sealed record OnnxRunResult<T>(TensorSet<T> Outputs, TensorSet<T>? Dump) where T : IFloatingPointIeee754<T>;

/// <summary>
/// Runs an ONNX model on inputs read from files: <c>.npy</c> (one tensor), <c>.safetensors</c> (tensors by graph
/// input name) or an ONNX <c>TensorProto</c> <c>.pb</c> (the backend-test layout's input_0.pb). Tensors without a
/// name (npy) or whose name is not a graph input (.pb written without one) fill the graph inputs still missing, in order.
/// </summary>
public static class OnnxRunner
{
    /// <summary>Reads the inputs of <paramref name="model"/> from files.</summary>
    public static Dictionary<string, OnnxValue<T>> ReadInputs<T>(OnnxModel model, IReadOnlyList<string> files) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(files);
        var names = model.Inputs.Select(i => i.Name).ToList();
        var given = new Dictionary<string, OnnxValue<T>>(StringComparer.Ordinal);
        var unnamed = new List<(string File, OnnxValue<T> Value)>();
        foreach (var file in files)
        {
            string ext = Path.GetExtension(file).ToLowerInvariant();
            if (ext == ".pb")
            {
                var proto = OnnxTensors.ReadProtoFile(file);
                var v = OnnxTensors.ToValue<T>(proto, $"{file}: tensor '{proto.Name}'");
                if (names.Contains(proto.Name)) Add(given, proto.Name, v, file);
                else unnamed.Add((file, v));
            }
            else if (ext == ".npy")
            {
                unnamed.Add((file, FromStored<T>(Npy.Read(file))));
            }
            else if (ext == ".safetensors")
            {
                foreach (var t in SafeTensors.Read(file))
                {
                    if (!names.Contains(t.Name))
                        throw new OnnxException($"{file}: tensor '{t.Name}' is not an input of {model.Source} (inputs: {string.Join(", ", names)})");
                    Add(given, t.Name, FromStored<T>(t), file);
                }
            }
            else throw new OnnxException($"{file}: inputs are read from .npy, .safetensors or .pb (an ONNX TensorProto), not '{ext}'");
        }
        var missing = names.Where(n => !given.ContainsKey(n)).ToList();
        if (unnamed.Count > missing.Count)
            throw new OnnxException($"{unnamed[missing.Count].File}: one input too many ({model.Source} takes {string.Join(", ", names)})");
        for (int i = 0; i < unnamed.Count; i++) given[missing[i]] = unnamed[i].Value;
        return given;
    }

    private static void Add<T>(Dictionary<string, OnnxValue<T>> given, string name, OnnxValue<T> v, string file) where T : IFloatingPointIeee754<T>
    {
        if (!given.TryAdd(name, v)) throw new OnnxException($"{file}: input '{name}' is given twice");
    }

    /// <summary>A stored tensor (npy, safetensors) as an ONNX value of its own type.</summary>
    public static OnnxValue<T> FromStored<T>(StoredTensor t) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(t);
        return t.DType switch
        {
            StoredDType.F64 => OnnxValue<T>.Real(OnnxElementType.Double, t.Shape, t.Values.Select(T.CreateChecked).ToArray()),
            StoredDType.F32 or StoredDType.F16 or StoredDType.BF16 =>
                OnnxValue<T>.Real(OnnxElementType.Float, t.Shape, t.Values.Select(T.CreateChecked).ToArray()),
            StoredDType.BOOL => OnnxValue<T>.Boolean(t.Shape, t.Values.Select(v => v != 0).ToArray()),
            StoredDType.I32 => OnnxValue<T>.Integer(OnnxElementType.Int32, t.Shape, t.Values.Select(v => (long)v).ToArray()),
            _ => OnnxValue<T>.Integer(OnnxElementType.Int64, t.Shape, t.Values.Select(v => (long)v).ToArray()),
        };
    }

    /// <summary>Runs the model; with <paramref name="dump"/>, keeps every node output in evaluation order.</summary>
    public static OnnxRunResult<T> Run<T>(OnnxModel model, IReadOnlyDictionary<string, OnnxValue<T>> inputs, bool dump)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(model);
        var all = dump ? new TensorSet<T>("node outputs") : null;
        var outs = model.Run(inputs, all is null ? null : (name, v) => all.Set(name, AsTensor(v)));
        var set = new TensorSet<T>("graph outputs");
        foreach (var o in model.Outputs) set.Set(o.Name, AsTensor(outs[o.Name]));
        return new OnnxRunResult<T>(set, all);
    }

    /// <summary>An ONNX value as a dense tensor of T (integers and bools converted to numbers; a scalar as shape []).</summary>
    public static DenseTensor<T> AsTensor<T>(OnnxValue<T> v) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(v);
        return new DenseTensor<T>(v.Reals ?? v.ToDoubles().Select(T.CreateChecked).ToArray(), v.Shape);
    }
}
