export { FreshHistories, type FreshHistoriesOptions, type FreshHistoriesStats } from './histories';
