namespace Loop.Docker;

using System.Security.Cryptography;
using System.Text;

/// <summary>
/// What the agent image is built from: the user's own build directory (<c>~/.loop/container</c>, which
/// <c>loop onboard:global</c> writes) when it has a Dockerfile, else the copy embedded in Loop. An image
/// built from the user's files carries their hash (<see cref="HashLabel"/>), so an edit to them makes
/// the next start build it again.
/// </summary>
/// <param name="Files">Build context: path inside the context → content.</param>
/// <param name="Origin">Where the files came from, for the log.</param>
/// <param name="Hash">The hash the image must carry; null for the embedded files, where any image of the name will do
/// (it may have been built by <c>make docker-build</c>).</param>
public sealed record AgentImageSource(IReadOnlyDictionary<string, byte[]> Files, string Origin, string? Hash)
{
    public const string HashLabel = "loop.build-hash";

    public static AgentImageSource Embedded { get; } = new(AgentImageFiles.All, "the embedded Dockerfile", null);

    /// <summary>The files of <paramref name="directory"/> when it holds a Dockerfile, else <see cref="Embedded"/>.</summary>
    /// <exception cref="IOException">A file of the directory cannot be read.</exception>
    public static AgentImageSource From(string directory, IReadOnlyDictionary<string, string> buildArgs)
    {
        if (!File.Exists(Path.Combine(directory, "Dockerfile")))
        {
            return Embedded;
        }
        var files = Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .ToDictionary(
                path => Path.GetRelativePath(directory, path).Replace(Path.DirectorySeparatorChar, '/'),
                File.ReadAllBytes,
                StringComparer.Ordinal);
        return new AgentImageSource(files, directory, HashOf(files, buildArgs));
    }

    /// <summary>Names, contents and build arguments: what decides the image.</summary>
    private static string HashOf(IReadOnlyDictionary<string, byte[]> files, IReadOnlyDictionary<string, string> buildArgs)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, content) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"{name}\0{content.Length}\0"));
            hash.AppendData(content);
        }
        foreach (var (name, value) in buildArgs.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"arg {name}={value}\0"));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
