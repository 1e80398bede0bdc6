using System.Security.Cryptography;

namespace Attention.Reference.Tests.Support;

/// <summary>Runs attention-ref in-process and prepares case folders, for the CLI tests.</summary>
public static class CliHarness
{
    /// <summary>Runs the CLI with <paramref name="args"/>; returns the exit code and what it wrote.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = global::Attention.Cli.Commands.Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Copies the files of <paramref name="from"/> into a new folder of the same name under <paramref name="into"/>.</summary>
    public static string CopyFolder(string from, string into)
    {
        string target = Path.Combine(into, Path.GetFileName(Path.TrimEndingDirectorySeparator(from)));
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(target, Path.GetFileName(f)));
        return target;
    }

    /// <summary>SHA-256 of every file of a folder (to show that inputs were not modified).</summary>
    public static Dictionary<string, string> Hashes(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => f, f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
}
