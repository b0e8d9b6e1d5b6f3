namespace Loop.Config;

using Loop.Domain.Tasks;

/// <summary>Reads a task's prompt file from its project. The project is the agent's to write, so the
/// file is judged by where it really leads: a link out of the project (to the Loop home, to the
/// host's files) is refused, never read into a prompt.</summary>
public static class PromptFiles
{
    public const int MaxBytes = 256 * 1024;

    public static string Read(string workDir, string promptFile)
    {
        var root = ProjectDirs.RealPath(Path.GetFullPath(workDir));
        var real = ProjectDirs.RealPath(Path.GetFullPath(Path.Combine(workDir, promptFile)));
        if (!real.StartsWith(Path.TrimEndingDirectorySeparator(root) + "/", StringComparison.Ordinal))
        {
            throw new PromptFileException($"prompt_file {promptFile} leads outside the project directory {workDir}");
        }
        var file = new FileInfo(real);
        if (!file.Exists)
        {
            throw new PromptFileException($"prompt_file {promptFile} does not exist in {workDir}");
        }
        if (file.Length > MaxBytes)
        {
            throw new PromptFileException($"prompt_file {promptFile} is {file.Length} bytes; at most {MaxBytes} are read");
        }
        // The agent of this channel does not run while its next prompt is read (one run at a time), so
        // the file cannot be swapped for a link between the check and the read.
        string text;
        try
        {
            text = File.ReadAllText(real);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PromptFileException($"prompt_file {promptFile} cannot be read: {e.Message}");
        }
        return string.IsNullOrWhiteSpace(text) ? throw new PromptFileException($"prompt_file {promptFile} is empty") : text;
    }
}
