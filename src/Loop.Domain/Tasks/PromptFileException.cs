namespace Loop.Domain.Tasks;

/// <summary>A task's prompt file cannot be read: its message says why, naming the file.</summary>
public sealed class PromptFileException(string message) : Exception(message);
