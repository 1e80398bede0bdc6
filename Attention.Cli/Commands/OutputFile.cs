using System.Numerics;
using Attention.Reference.IO;
using Attention.Reference.Tensors;

namespace Attention.Cli.Commands;

/// <summary>
/// Where a command's tensors go. The format follows the extension: <c>.safetensors</c> (any number of tensors,
/// with metadata) or <c>.npy</c> (exactly one tensor); anything else is refused. An output that resolves
/// (symbolic links followed) to a file the same command reads is refused, and so is an existing target that is a
/// link, a directory or a device (<see cref="AtomicFile"/>): inputs are never modified or overwritten.
/// </summary>
public static class OutputFile
{
    /// <summary>Throws unless <paramref name="path"/> is an acceptable output for a command reading <paramref name="inputs"/>.</summary>
    public static void Check(string path, IEnumerable<string> inputs, bool needsSafetensors = false)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("The output path is empty.");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".safetensors" or ".npy"))
            throw new ArgumentException($"Output '{path}': unknown extension '{ext}'; use .safetensors (or .npy for a single tensor).");
        if (needsSafetensors && ext != ".safetensors")
            throw new ArgumentException($"Output '{path}': this output holds several tensors and metadata; use .safetensors.");
        string target = Resolve(path);
        foreach (var input in inputs)
            if (string.Equals(Resolve(input), target, StringComparison.Ordinal))
                throw new ArgumentException($"Output '{path}' is an input of this command ('{input}'); refusing to overwrite it.");
        AtomicFile.CheckTarget(path);
    }

    /// <summary>Writes <paramref name="tensors"/> in the format the extension names (after <see cref="Check"/>).</summary>
    public static void Write<T>(string path, TensorSet<T> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        where T : IFloatingPointIeee754<T>
    {
        if (Path.GetExtension(path).Equals(".npy", StringComparison.OrdinalIgnoreCase))
        {
            if (tensors.Count != 1)
                throw new ArgumentException(
                    $"Output '{path}': an .npy file holds one tensor and this command produced {tensors.Count} " +
                    $"({string.Join(", ", tensors.Names.Take(5))}{(tensors.Count > 5 ? ", …" : "")}); use .safetensors.");
            Npy.Write(path, tensors.Get(tensors.Names[0]));
            return;
        }
        SafeTensors.Write(path, tensors, metadata);
    }

    /// <summary>The absolute path with every symbolic link along it resolved (as far as the path exists).</summary>
    public static string Resolve(string path) => AtomicFile.Resolve(path);
}

/// <summary>Tolerance options shared by compare and verify.</summary>
public static class ToleranceOptions
{
    /// <summary>Throws unless the tolerance is absent or a finite number ≥ 0.</summary>
    public static double? Validate(double? value, string name) =>
        value is { } v && (double.IsNaN(v) || double.IsInfinity(v) || v < 0)
            ? throw new ArgumentException($"{name} must be a finite number ≥ 0, got {v}.")
            : value;
}
