namespace Loop.Telegram;

using System.Globalization;
using System.Text;
using Loop.Domain.Budgets;
using Loop.Domain.Tasks;
using Loop.Grains;
using Loop.Runtime;
using global::Telegram.Bot.Types;

/// <summary>
/// The bot's commands: what <c>setMyCommands</c> registers, and what each does. Everything goes
/// through <see cref="TaskService"/> as the REST API does, so input is checked with the same messages.
/// Telegram commands carry their arguments as text: <c>/schedule interval 1h check the build</c>,
/// <c>/schedule cron "0 9 * * 1-5" summarise yesterday</c> (a cron's five fields may also go unquoted).
/// </summary>
public sealed class TelegramCommands(TaskService tasks, Func<HealthReport> health, BudgetService budgets)
{
    public const string Usage = "Usage: /schedule <cron|interval|once|loop> <schedule> <prompt>, e.g. /schedule interval 1h check the build";
    public const string BudgetUsage = "Usage: /budget [daily <usd|none>] [monthly <usd|none>], e.g. /budget daily 5 monthly 50";

    private static readonly string[] Types = ["cron", "interval", "once", "loop"];

    /// <summary>The commands as setMyCommands takes them.</summary>
    public static IReadOnlyList<BotCommand> Definitions() =>
    [
        new BotCommand("loop", "Talk to the agent: /loop <message>"),
        new BotCommand("schedule", "Schedule a task: /schedule <cron|interval|once|loop> <schedule> <prompt>"),
        new BotCommand("tasks", "List this chat's scheduled tasks"),
        new BotCommand("cancel", "Cancel (delete) a task: /cancel <task_id>"),
        new BotCommand("toggle", "Turn a task on or off: /toggle <task_id>"),
        new BotCommand("status", "Show Loop's status"),
        new BotCommand("budget", "Show this chat's budget, or set it: /budget daily 5 monthly 50"),
    ];

    /// <summary>Whether the bot answers this command (without the slash and @botname).</summary>
    public static bool Knows(string command) => command is "schedule" or "tasks" or "cancel" or "toggle" or "status" or "budget" or "start" or "help";

    /// <summary>Runs a command for the Loop channel of the chat; returns the answer (Markdown). Throws
    /// the <see cref="TaskService"/>'s exceptions (their messages are for the user).</summary>
    public async Task<string> ExecuteAsync(string command, string arguments, string channelId, CancellationToken cancellationToken)
    {
        var caller = Caller.User;
        var words = Words(arguments);
        switch (command)
        {
            case "schedule":
                var (type, schedule, prompt) = ParseSchedule(arguments);
                var created = await tasks.CreateAsync(caller, new NewTaskRequest(channelId, type, schedule, prompt), cancellationToken);
                return $"Scheduled task `{created.Id}`: {Describe(created)}";
            case "tasks":
                var list = await tasks.ListAsync(caller, channelId, cancellationToken);
                if (list.Count == 0)
                {
                    return "No scheduled tasks in this chat. Add one with /schedule.";
                }
                var text = new StringBuilder($"**{list.Count} task(s) in this chat**\n");
                foreach (var task in list)
                {
                    text.Append($"`{task.Id}` **{TelegramFormatter.EscapeMarkdown(task.Name)}** {(task.Enabled ? "on" : "off")} · {Describe(task)}\n");
                }
                return text.ToString().TrimEnd();
            case "cancel":
                var taskId = Required(words.FirstOrDefault());
                await tasks.DeleteAsync(caller, taskId, cancellationToken);
                return $"Cancelled task `{taskId}`.";
            case "toggle":
                var current = await tasks.GetAsync(caller, Required(words.FirstOrDefault()), cancellationToken);
                var toggled = await tasks.UpdateAsync(caller, current.Id, new TaskChangeRequest(Enabled: !current.Enabled), cancellationToken);
                return $"Task `{toggled.Id}` is now {(toggled.Enabled ? "enabled" : "disabled")}: {Describe(toggled)}";
            case "status":
                return Status(await tasks.ListAsync(caller, channelId, cancellationToken));
            case "budget":
                var (daily, monthly) = ParseBudget(words);
                var (channel, connector) = await budgets.ChatBudgetAsync(caller, channelId, daily, monthly, cancellationToken);
                return connector is null ? Describe("This chat", channel) : Describe("This chat", channel) + "\n" + Describe($"Connector {connector.Name}", connector);
            default:
                return "I run your agent. Write to me here (in a group: mention me, reply to me or use /loop <message>).\n"
                    + "/schedule <cron|interval|once|loop> <schedule> <prompt> · /tasks · /cancel <task_id> · /toggle <task_id> · /status · /budget";
        }
    }

    /// <summary>type, schedule and prompt of <c>/schedule</c>'s text; what is missing is null, for
    /// <see cref="TaskService"/> to say so.</summary>
    public static (string? Type, string? Schedule, string? Prompt) ParseSchedule(string arguments)
    {
        var rest = arguments.Trim();
        string? type = null;
        var first = NextWord(ref rest);
        if (first is not null && Types.Contains(first.ToLowerInvariant()))
        {
            type = first.ToLowerInvariant();
            first = null;
        }
        string? schedule;
        if (first is not null)
        {
            schedule = first;
        }
        else if (rest.StartsWith('"') && rest.IndexOf('"', 1) is var quote and > 0)
        {
            schedule = rest[1..quote];
            rest = rest[(quote + 1)..].TrimStart();
        }
        else if (type == "cron")
        {
            var fields = new List<string>();
            while (fields.Count < 5 && NextWord(ref rest) is { } field)
            {
                fields.Add(field);
            }
            schedule = fields.Count == 0 ? null : string.Join(' ', fields);
        }
        else
        {
            schedule = NextWord(ref rest);
        }
        return (type, string.IsNullOrWhiteSpace(schedule) ? null : schedule, rest.Length == 0 ? null : rest);
    }

    /// <summary>The limits <c>/budget</c> sets: <c>daily 5 monthly 50</c>, either alone, in either order.</summary>
    public static (string? Daily, string? Monthly) ParseBudget(IReadOnlyList<string> words)
    {
        string? daily = null;
        string? monthly = null;
        for (var i = 0; i < words.Count; i += 2)
        {
            var period = words[i].ToLowerInvariant();
            if (period is not ("daily" or "monthly") || i + 1 >= words.Count)
            {
                throw new LoopValidationException("budget", period is "daily" or "monthly" ? $"{period} needs an amount or none" : $"\"{words[i]}\" is not daily or monthly");
            }
            if (period == "daily")
            {
                daily = words[i + 1];
            }
            else
            {
                monthly = words[i + 1];
            }
        }
        return (daily, monthly);
    }

    private static string Describe(string what, BudgetStatus status)
    {
        string Period(BudgetPeriod period, string word) => status.Limits.Of(period) is { } limit
            ? $"{word} {BudgetWire.Usd(status.Spent(period))} of {BudgetWire.Usd(limit)} (resets {BudgetWire.When(status.ResetsAt(period))})"
            : $"{word} {BudgetWire.Usd(status.Spent(period))} spent, no limit";
        var spent = status.Exhausted is null ? "" : " · **spent**: runs are refused until it resets";
        var hint = status.Limits.IsNone ? " · set one with /budget daily 5 monthly 50" : "";
        return $"**{TelegramFormatter.EscapeMarkdown(what)}**: {Period(BudgetPeriod.Day, "today")} · {Period(BudgetPeriod.Month, "this month")}{spent}{hint}";
    }

    private static string? NextWord(ref string rest)
    {
        rest = rest.TrimStart();
        if (rest.Length == 0 || rest.StartsWith('"'))
        {
            return null;
        }
        var end = rest.IndexOfAny([' ', '\n', '\t']);
        var word = end < 0 ? rest : rest[..end];
        rest = end < 0 ? "" : rest[end..].TrimStart();
        return word;
    }

    private static List<string> Words(string arguments) =>
        arguments.Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();

    private static string Required(string? value, string field = "task_id") =>
        value ?? throw new LoopValidationException(field, $"{field} is required");

    private string Status(IReadOnlyList<ScheduledTask> chatTasks) => ChatStatus.Text(health(), chatTasks, "This chat");

    private static string Describe(ScheduledTask task)
    {
        var what = task.Type == TaskType.Loop
            ? $"loop task ({TaskWire.ToWire(task.LoopState)}, iteration {task.Iteration}/{task.MaxIterations})"
            : $"{TaskWire.ToWire(task.Type)} `{task.Schedule}`";
        var next = task.NextRunAt is { } at && task.Enabled
            ? $", next run {at.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC"
            : "";
        var prompt = task.Prompt.Length <= 80 ? task.Prompt : task.Prompt[..80] + "…";
        return $"{what}{next} · {TelegramFormatter.EscapeMarkdown(prompt.ReplaceLineEndings(" "))}";
    }
}
