namespace Loop.Cli;

using System.CommandLine;
using Loop.Client;

/// <summary>The options of the commands that talk to a running daemon (<c>--api-url</c>, <c>--token</c>,
/// <c>--json</c>, given anywhere after the command's name), and how such a command runs: an API error
/// prints one line <c>loop: &lt;detail&gt;</c> and exits 1.</summary>
internal sealed record ApiOptions(Option<string?> ApiUrl, Option<string?> Token, Option<bool> Json)
{
    public static ApiOptions Create()
    {
        var apiUrl = McpCommand.ApiUrlOption();
        apiUrl.Recursive = true;
        var token = McpCommand.TokenOption();
        token.Recursive = true;
        return new ApiOptions(apiUrl, token, new Option<bool>("--json") { Description = "Print the API's JSON instead of text", Recursive = true });
    }

    /// <summary>A command whose subcommands take these options.</summary>
    public Command Group(string name, string description) => new(name, description) { ApiUrl, Token, Json };

    /// <summary>Runs <paramref name="action"/> with a client of the daemon and whether JSON was asked for.</summary>
    public async Task<int> RunAsync(ParseResult parse, Func<LoopApiClient, bool, Task> action)
    {
        using var api = new LoopApiClient(LoopApiClient.ResolveApiUrl(parse.GetValue(ApiUrl)), parse.GetValue(Token));
        try
        {
            await action(api, parse.GetValue(Json));
            return 0;
        }
        catch (LoopApiException error)
        {
            Console.Error.WriteLine($"loop: {error.Message}");
            return 1;
        }
    }
}
