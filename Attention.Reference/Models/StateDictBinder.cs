using System.Numerics;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using Attention.Reference.Tensors;

namespace Attention.Reference.Models;

/// <summary>
/// Binds a state_dict to a layer tree by name, strictly, as PyTorch's <c>load_state_dict(strict=True)</c>: every
/// parameter and buffer must be given with its shape (or its declared alternate shape), nothing else may be
/// (keys the tree declares as ignored, such as BatchNorm's <c>num_batches_tracked</c>, are accepted and dropped).
/// Nothing is changed unless everything fits.
/// <para>
/// Every problem is reported at once. The exception type says which kind: only missing keys →
/// <see cref="KeyNotFoundException"/>; only unexpected keys → <see cref="InvalidDataException"/>; one shape mismatch
/// alone → <see cref="ShapeMismatchException"/> (naming the tensor); anything else → <see cref="StateDictException"/>
/// with the three lists. Each message names the source and every key.
/// </para>
/// </summary>
public static class StateDictBinder
{
    /// <summary>One state_dict entry: its name, shape, integer type (null for floats), and its value in a given shape.</summary>
    private sealed record Entry<T>(string Name, int[] Shape, StoredDType? IntegerType, Func<int[], DenseTensor<T>> Value)
        where T : IFloatingPointIeee754<T>;

    /// <summary>Binds stored tensors (any float dtype, widened exactly) to the tree under <paramref name="root"/>.</summary>
    public static void Bind<T>(Layer<T> root, IReadOnlyList<StoredTensor> state, string source, string model)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(state);
        BindCore(root, state.Select(t => new Entry<T>(t.Name, t.Shape, t.IsInteger ? t.DType : null,
            shape => DenseTensor<T>.FromDoubles(t.Values, shape))).ToList(), source, model);
    }

    /// <summary>Binds tensors already in <typeparamref name="T"/>: the caller's arrays are used, not copied.</summary>
    public static void Bind<T>(Layer<T> root, TensorSet<T> state, string model) where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(state);
        BindCore(root, state.Select(kv => new Entry<T>(kv.Key, kv.Value.ShapeArray(), null, kv.Value.Reshape)).ToList(),
            state.Description, model);
    }

    private static void BindCore<T>(Layer<T> root, List<Entry<T>> state, string source, string model)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(root);
        // A module. prefix on every key (DataParallel / DDP) is stripped.
        const string prefix = "module.";
        var entries = state.Count > 0 && state.All(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
            ? state.Select(t => t with { Name = t.Name[prefix.Length..] }).ToList()
            : state;
        var mine = root.NamedTensors().ToDictionary(t => t.Name, t => t.Tensor, StringComparer.Ordinal);
        var ignored = new HashSet<string>(root.IgnoredKeys(), StringComparer.Ordinal);
        var given = new HashSet<string>(StringComparer.Ordinal);
        List<string> unexpected = new(), missing = new();
        var mismatched = new List<(string Name, string Expected, int[] Actual, string? Why)>();
        var values = new List<(Parameter<T>, Entry<T>)>();
        foreach (var t in entries)
        {
            given.Add(t.Name);
            if (ignored.Contains(t.Name)) continue;
            if (!mine.TryGetValue(t.Name, out var p)) { unexpected.Add(t.Name); continue; }
            string expected = p.AlternateShape is { } alt
                ? $"{ShapeUtil.Format(p.Shape.ToArray())} or {ShapeUtil.Format(alt)}"
                : ShapeUtil.Format(p.Shape.ToArray());
            if (t.IntegerType is { } it) mismatched.Add((t.Name, expected, t.Shape, $"stored as {it}, a floating-point tensor is needed"));
            else if (!p.Shape.SequenceEqual(t.Shape) && !(p.AlternateShape is { } a && a.AsSpan().SequenceEqual(t.Shape)))
                mismatched.Add((t.Name, expected, t.Shape, null));
            else values.Add((p, t));
        }
        foreach (var name in mine.Keys)
            if (!given.Contains(name)) missing.Add(name);

        string known = string.Join(", ", mine.Keys);
        if (missing.Count > 0 && unexpected.Count == 0 && mismatched.Count == 0)
            throw new KeyNotFoundException(
                $"{source} has no tensor {Quote(missing)} ({model} needs: {known}).");
        if (unexpected.Count > 0 && missing.Count == 0 && mismatched.Count == 0)
            throw new InvalidDataException(
                $"{source} has an unknown tensor {Quote(unexpected)}; expected only: {known}.");
        if (mismatched.Count == 1 && missing.Count == 0 && unexpected.Count == 0 && mismatched[0].Why is null)
        {
            var (name, expected, actual, _) = mismatched[0];
            throw new ShapeMismatchException(name, $"{expected} (in {source})", actual);
        }
        if (mismatched.Count + missing.Count + unexpected.Count > 0)
        {
            var lines = mismatched.Select(m => m.Why is null
                ? $"{m.Name}: expected {m.Expected}, got {ShapeUtil.Format(m.Actual)}"
                : $"{m.Name}: {m.Why}").ToList();
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing key(s): {string.Join(", ", missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected key(s): {string.Join(", ", unexpected)}");
            if (lines.Count > 0) parts.Add($"size mismatch: {string.Join("; ", lines)}");
            throw new StateDictException(
                $"{source}: error(s) in loading the state_dict for {model}: {string.Join(". ", parts)}.", missing, unexpected, lines);
        }
        foreach (var (p, t) in values)
        {
            p.Value = t.Value(p.Shape.ToArray());
            p.GivenShape = t.Shape;
        }
    }

    private static string Quote(List<string> names) => string.Join(", ", names.Select(n => $"'{n}'"));
}
