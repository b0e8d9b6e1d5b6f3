namespace Loop.Docker;

using System.Text;

/// <summary>The agent image's build context (container/Dockerfile and container/entrypoint.sh),
/// embedded in this assembly so the daemon can build its image without a source tree.</summary>
public static class AgentImageFiles
{
    public static string Dockerfile { get; } = Read("container/Dockerfile");

    public static string Entrypoint { get; } = Read("container/entrypoint.sh");

    /// <summary>Build context: file name → content.</summary>
    public static IReadOnlyDictionary<string, byte[]> All { get; } = new Dictionary<string, byte[]>
    {
        ["Dockerfile"] = Encoding.UTF8.GetBytes(Dockerfile),
        ["entrypoint.sh"] = Encoding.UTF8.GetBytes(Entrypoint),
    };

    private static string Read(string name)
    {
        using var stream = typeof(AgentImageFiles).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing from {typeof(AgentImageFiles).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
