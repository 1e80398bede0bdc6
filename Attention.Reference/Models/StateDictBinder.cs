using Attention.Reference.IO;
using Attention.Reference.Layers;

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

        string known = Summary(mine.Keys.ToList());
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
            if (missing.Count > 0) parts.Add($"{missing.Count} missing key(s): {Summary(missing)}");
            if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected key(s): {Summary(unexpected)}");
            if (lines.Count > 0) parts.Add($"{lines.Count} size mismatch(es): {Summary(lines, "; ")}");
            string likely = unexpected.Count > 0 && LikelyModel(given, model) is { } other
                ? $" These weights look like {other.Name}'s ({other.Matched} of their {given.Count} keys are its)." : "";
            throw new StateDictException(
                $"{source}: error(s) in loading the state_dict for {model}: {string.Join(". ", parts)}.{likely}", missing, unexpected, lines);
        }
        foreach (var (p, t) in values)
        {
            p.Value = t.Value(p.Shape.ToArray());
            p.GivenShape = t.Shape;
        }
    }

    private static string Quote(List<string> names) => Summary(names.Select(n => $"'{n}'").ToList());

    /// <summary>A list for a message: whole when short, else its first six and how many more (a message stays one screen).</summary>
    private static string Summary(List<string> names, string separator = ", ") =>
        names.Count <= 10 ? string.Join(separator, names) : $"{string.Join(separator, names.Take(6))}{separator}… and {names.Count - 6} more";

    /// <summary>
    /// The network of the zoo (other than <paramref name="model"/>) whose state_dict names hold the most of the given
    /// keys, when it holds at least nine in ten of them: the model the weights were probably saved from.
    /// </summary>
    private static (string Name, int Matched)? LikelyModel(HashSet<string> given, string model)
    {
        (string Name, int Matched)? best = null;
        foreach (var f in ModelZoo.Networks)
        {
            if (f.Name == model) continue;
            int matched;
            try
            {
                var root = ModelZoo.Create<double>(f.Name).Root;
                matched = root.NamedTensors().Select(t => t.Name).Concat(root.IgnoredKeys()).Count(given.Contains);
            }
            catch (ArgumentException) { continue; }
            if (matched * 10L >= given.Count * 9L && matched > (best?.Matched ?? 0)) best = (f.Name, matched);
        }
        return best;
    }
}
