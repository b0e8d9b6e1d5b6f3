namespace Loop.Domain.Agents;

using System.Globalization;
using System.Text;
using Loop.Domain.Channels;

public enum TurnRole
{
    User,
    Assistant,
}

/// <summary>One turn of a conversation as the Messages API takes it.</summary>
public sealed record ConversationTurn(TurnRole Role, string Text);

/// <summary>
/// What a direct run (a channel in direct mode: the Messages API, no container) sends: the channel's
/// stored conversation and the run's prompt, as turns that alternate between user and assistant, start
/// with the user and end with the prompt, cut at the oldest end to fit the model's context window.
/// </summary>
public static class DirectConversation
{
    /// <summary>The model asked for when neither the channel nor <c>claude_model</c> names one.</summary>
    public const string DefaultModel = "claude-sonnet-4-5";

    /// <summary>Every Claude model takes at least 200,000 tokens of context (some take more, behind a
    /// beta header Loop does not send).</summary>
    public const int ContextWindowTokens = 200_000;

    /// <summary><c>max_tokens</c> of a reply: room every current model has, kept out of the window.</summary>
    public const int ReplyTokens = 8_192;

    // Role markers and separators the API adds around each turn.
    private const int TokensPerTurn = 8;

    /// <summary>The tokens the turns may take: the window less the reply and the system prompt.</summary>
    public static int BudgetFor(string systemPrompt) => ContextWindowTokens - ReplyTokens - EstimateTokens(systemPrompt);

    /// <summary>
    /// An estimate of the tokens a text takes, erring high: one per 3 bytes of UTF-8. Claude's
    /// tokenizer averages about 3.5 characters per token for English prose and fewer for code; a CJK
    /// character is 3 bytes and about one token. Counting exactly would cost an API call per run
    /// (count_tokens); overestimating only drops a little more old history than needed.
    /// </summary>
    public static int EstimateTokens(string text) => (Encoding.UTF8.GetByteCount(text) + 2) / 3;

    /// <summary>The turns to send.</summary>
    /// <param name="earlier">The conversation before this run, oldest first: people's messages (led by
    /// their author, as a prompt is) and the agent's replies. Loop's own notes (a run failed) are not
    /// part of what was said and are left out.</param>
    /// <param name="prompt">This run's prompt: its messages, or a task's prompt.</param>
    /// <param name="budget">How many tokens the turns may take (<see cref="BudgetFor"/>).</param>
    public static IReadOnlyList<ConversationTurn> Build(IReadOnlyList<ChatMessage> earlier, string prompt, int budget)
    {
        var turns = new List<ConversationTurn>();
        foreach (var message in earlier)
        {
            switch (message.Role)
            {
                case MessageRole.User:
                    Add(turns, TurnRole.User, $"{message.Author}: {message.Content}");
                    break;
                case MessageRole.Agent:
                    Add(turns, TurnRole.Assistant, message.Content);
                    break;
            }
        }
        // Messages a failed run left unanswered join the prompt: the API wants the roles to alternate.
        Add(turns, TurnRole.User, prompt);

        var total = turns.Sum(Cost);
        var first = 0;
        // The oldest turns go first, and a conversation must open with the user. The prompt always stays.
        while (first < turns.Count - 1 && (total > budget || turns[first].Role != TurnRole.User))
        {
            total -= Cost(turns[first]);
            first++;
        }
        return turns.GetRange(first, turns.Count - first);
    }

    private static int Cost(ConversationTurn turn) => EstimateTokens(turn.Text) + TokensPerTurn;

    private static void Add(List<ConversationTurn> turns, TurnRole role, string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }
        if (turns.Count > 0 && turns[^1].Role == role)
        {
            turns[^1] = turns[^1] with { Text = turns[^1].Text + "\n" + text };
            return;
        }
        turns.Add(new ConversationTurn(role, text));
    }
}

/// <summary>
/// A direct channel's "session": where its conversation starts in the stored messages, so that a reset
/// of the session (which forgets it) starts a new conversation there too. Kept where a container
/// channel keeps its Claude session id; a Claude session id there (a channel that ran in a container
/// before) continues the whole stored conversation.
/// </summary>
public static class DirectSession
{
    private const string Prefix = "direct-since-";

    /// <summary>The session of a conversation whose first message has this id.</summary>
    public static string Since(long firstMessageId) => Prefix + firstMessageId.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether the session is a direct conversation's (not one Claude Code knows).</summary>
    public static bool IsDirect(string? sessionId) => sessionId?.StartsWith(Prefix, StringComparison.Ordinal) == true;

    /// <summary>The id of the conversation's first message: null for a new conversation (no session),
    /// 0 (every stored message) for a Claude Code session.</summary>
    public static long? Start(string? sessionId) =>
        sessionId is null ? null
        : IsDirect(sessionId) && long.TryParse(sessionId.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id
        : 0;
}
