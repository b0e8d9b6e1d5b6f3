namespace Loop.Domain.Channels;

using System.Text;

/// <summary>Turns the messages a run takes into one prompt: arrival order, each line led by its author.</summary>
public static class PromptBuilder
{
    public static string Build(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0)
        {
            throw new ArgumentException("a prompt needs at least one message", nameof(messages));
        }
        var prompt = new StringBuilder();
        foreach (var message in messages)
        {
            if (prompt.Length > 0)
            {
                prompt.Append('\n');
            }
            prompt.Append(message.Author).Append(": ").Append(message.Content);
        }
        return prompt.ToString();
    }
}
