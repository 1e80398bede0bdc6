namespace Attention.Reference.Tensors;

/// <summary>
/// Tensors by name, in insertion order: a safetensors file, a PyTorch state_dict, or a module's outputs.
/// </summary>
public sealed class TensorSet<T> : IEnumerable<KeyValuePair<string, DenseTensor<T>>> where T : IFloatingPointIeee754<T>
{
    private readonly List<string> _order = new();
    private readonly Dictionary<string, DenseTensor<T>> _byName = new(StringComparer.Ordinal);

    /// <summary>What this set is (for error messages), e.g. "params.safetensors".</summary>
    public string Description { get; }

    /// <summary>Creates an empty set.</summary>
    public TensorSet(string description = "tensors") => Description = description;

    /// <summary>The names, in insertion order.</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>The number of tensors.</summary>
    public int Count => _order.Count;

    /// <summary>Adds or replaces a tensor.</summary>
    public void Set(string name, DenseTensor<T> tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_byName.ContainsKey(name)) _order.Add(name);
        _byName[name] = tensor;
    }

    /// <summary>True when the set holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The tensor called <paramref name="name"/>, or null.</summary>
    public DenseTensor<T>? TryGet(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The tensor called <paramref name="name"/>; a clear error when it is missing.</summary>
    public DenseTensor<T> Get(string name) =>
        _byName.TryGetValue(name, out var t)
            ? t
            : throw new KeyNotFoundException(
                $"{Description} has no tensor '{name}' (it has: {(Count == 0 ? "none" : string.Join(", ", _order))}).");

    /// <summary>The tensor called <paramref name="name"/>, checked against <paramref name="shape"/>.</summary>
    public DenseTensor<T> Get(string name, params int[] shape)
    {
        var t = Get(name);
        ShapeUtil.Require(t, name, shape);
        return t;
    }

    /// <summary>Throws when the set holds a name outside <paramref name="allowed"/>.</summary>
    public void RejectUnknown(IEnumerable<string> allowed)
    {
        var set = new HashSet<string>(allowed, StringComparer.Ordinal);
        foreach (var name in _order)
            if (!set.Contains(name))
                throw new InvalidDataException(
                    $"{Description} has an unknown tensor '{name}'; expected only: {string.Join(", ", set.Order())}.");
    }

    /// <summary>Converts every tensor to <typeparamref name="TOut"/>.</summary>
    public TensorSet<TOut> Cast<TOut>() where TOut : IFloatingPointIeee754<TOut>
    {
        var result = new TensorSet<TOut>(Description);
        foreach (var name in _order) result.Set(name, _byName[name].Cast<TOut>());
        return result;
    }

    /// <summary>A deep copy.</summary>
    public TensorSet<T> Clone() => Cast<T>();

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, DenseTensor<T>>> GetEnumerator()
    {
        foreach (var name in _order) yield return new(name, _byName[name]);
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
