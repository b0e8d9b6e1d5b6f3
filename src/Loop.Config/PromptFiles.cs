namespace Loop.Config;

using Loop.Domain.Tasks;

/// <summary>Reads prompt files: a task's prompt file and a project's system prompt file from its
/// project, the global system prompt file from wherever the user keeps it. The project is the
/// agent's to write, so a file of it is judged by where it really leads: a link out of the project
/// (to the Loop home, to the host's files) is refused, never read into a prompt.</summary>
public static class PromptFiles
{
    public const int MaxBytes = 256 * 1024;

    public static string Read(string workDir, string promptFile) => Read(workDir, promptFile, "prompt_file", MaxBytes);

    /// <param name="field">The setting that names the file, as messages call it.</param>
    public static string Read(string workDir, string promptFile, string field, int maxBytes)
    {
        var root = ProjectDirs.RealPath(Path.GetFullPath(workDir));
        var real = ProjectDirs.RealPath(Path.GetFullPath(Path.Combine(workDir, promptFile)));
        if (!real.StartsWith(Path.TrimEndingDirectorySeparator(root) + "/", StringComparison.Ordinal))
        {
            throw new PromptFileException($"{field} {promptFile} leads outside the project directory {workDir}");
        }
        // The agent of this channel does not run while its next prompt is read (one run at a time), so
        // the file cannot be swapped for a link between the check and the read.
        return ReadFile(real, $"{field} {promptFile}", $" in {workDir}", maxBytes);
    }

    /// <summary>A file of the user's own choosing (the global config's), links followed.</summary>
    public static string ReadTrusted(string path, string field, int maxBytes) => ReadFile(path, $"{field} {path}", "", maxBytes);

    private static string ReadFile(string path, string name, string where, int maxBytes)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
        {
            throw new PromptFileException($"{name} does not exist{where}");
        }
        if (file.Length > maxBytes)
        {
            throw new PromptFileException($"{name} is {file.Length} bytes; at most {maxBytes} are read");
        }
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PromptFileException($"{name} cannot be read: {e.Message}");
        }
        return string.IsNullOrWhiteSpace(text) ? throw new PromptFileException($"{name} is empty") : text;
    }
}
