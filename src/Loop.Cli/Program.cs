using Loop.Cli;

return await LoopCommandLine.RunAsync(args);
